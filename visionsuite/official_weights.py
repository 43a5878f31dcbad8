"""Checkpoints and pretrained weights in the official repositories' own formats.

The papers' authors released plain PyTorch files, not Lightning checkpoints: DARTS's ``cifar10_model.pt`` (a bare
state dict), its ``imagenet_model.pt`` (``{'state_dict': ...}``), CenterNet's ``CenterNet-52_480000.pkl`` (the
state dict of a ``DataParallel``-wrapped model: every key starts with ``module.``), SAKE's ``model_best.pth.tar``
(``{'epoch', 'arch', 'state_dict', 'optimizer', ...}``), the ImageNet SE-ResNet-50 ``se_resnet50-ce0d4300.pth`` that
SAKE starts from. This module reads such a file into one flat state dict (:func:`read_official_weights`) and loads
it into a suite network through a per-key converter that lives next to the network it serves
(:func:`load_converted`). The conversion is strict: every official key is used and every parameter and buffer of
the network is filled, with equal shapes; otherwise one error names the file and the first unmatched key on each
side.

A converter is a function ``(official key, tensor) -> (suite key, tensor)`` or ``None`` for a key it does not
know; most are pure renames, some reshape (a 1x1 convolution that the suite holds as a linear layer). A converter
may also have a method ``advise(key) -> str | None``: given the first unmatched key on either side, it says which
option fits the file (e.g. ``set model.net.auxiliary_batchnorm=true``), and the error says that instead of the generic
advice.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionsuite.errors import ConfigError

log = logging.getLogger(__name__)

KeyConverter = Callable[[str, torch.Tensor], "tuple[str, torch.Tensor] | None"]

#: Keys under which official training scripts store the weights inside a larger checkpoint dict.
WRAPPER_KEYS = ("state_dict", "model", "net", "model_state_dict")
DATA_PARALLEL_PREFIX = "module."
LIGHTNING_MARKERS = ("pytorch-lightning_version", "visionsuite", "global_step", "loops")


class OfficialWeightsError(ConfigError):
    """An official weights file that cannot be read or does not fit the network it is loaded into."""


@dataclass(frozen=True)
class OfficialFormat:
    """How a module reads an official checkpoint: the network the weights load into and the per-key converter.

    Attributes:
        network: the module (usually ``self.net``) that receives the converted weights.
        convert_key: the network family's converter (see the module docstring).
        description: what the official file is, e.g. ``DARTS evaluation network (quark0/darts cnn/model.py)``;
            named in messages.
    """

    network: nn.Module
    convert_key: KeyConverter
    description: str


def is_lightning_checkpoint(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` (a loaded file) was written by Lightning or by the suite."""
    return isinstance(checkpoint, Mapping) and any(marker in checkpoint for marker in LIGHTNING_MARKERS)


def load_file(path: str | Path) -> Any:
    """``torch.load`` an official file: tensors only when possible; otherwise (an official training checkpoint
    pickles numbers and strings of its script, such as ``best_acc1`` or ``arch``) the full unpickler, which runs
    code stored in the file: load only files from sources you trust."""
    path = Path(path)
    if not path.is_file():
        raise OfficialWeightsError(f"{path}: no such file.")
    try:
        try:
            return _torch_load(path, weights_only=True)
        except pickle.UnpicklingError:
            log.info("%s holds more than tensors (an official training checkpoint); loading it with the full "
                     "unpickler.", path)
            return _torch_load(path, weights_only=False)
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, IndexError, AttributeError, ModuleNotFoundError,
            pickle.UnpicklingError) as error:
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise OfficialWeightsError(f"{path} cannot be read as a PyTorch file ({reason}).") from None


def _torch_load(path: Path, *, weights_only: bool) -> Any:
    """``torch.load`` with the tensors memory-mapped (cheap for large files); files in the legacy (pre-1.6,
    non-zip) serialization cannot be mapped and are read whole."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise
        return torch.load(path, map_location="cpu", weights_only=weights_only)


def unwrap_state_dict(loaded: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The flat state dict inside a loaded official file, without a ``module.`` (``DataParallel``) prefix."""
    state = loaded
    if isinstance(state, nn.Module):
        state = state.state_dict()
    while isinstance(state, Mapping) and not _all_tensors(state):
        inner = next((state[key] for key in WRAPPER_KEYS if isinstance(state.get(key), Mapping)), None)
        if inner is None:
            found = ", ".join(map(str, list(state)[:8]))
            raise OfficialWeightsError(
                f"{path} holds no state dict: its top-level keys are {found}; expected tensors by parameter name, "
                f"or one of {', '.join(WRAPPER_KEYS)} holding them.")
        state = inner
    if not isinstance(state, Mapping) or not state:
        raise OfficialWeightsError(f"{path} holds no state dict (found {type(loaded).__name__}).")
    names = [str(key) for key in state]
    if all(name.startswith(DATA_PARALLEL_PREFIX) for name in names):
        state = {name[len(DATA_PARALLEL_PREFIX):]: tensor for name, tensor in state.items()}
    return with_batch_counters(state)


def with_batch_counters(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with a zero ``num_batches_tracked`` beside every BatchNorm that has none, in place after its
    ``running_var``.

    Files saved before PyTorch 0.4.1 have no such counter (DARTS's released models, Cadene's 2017
    ``se_resnet50-ce0d4300.pth``); ``BatchNorm2d`` itself fills it with 0 when it loads them, and so does this. The
    counter only matters for ``momentum=None``, which none of the papers' networks uses.
    """
    completed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        completed[name] = tensor
        if name.endswith(".running_var"):
            counter = name[: -len("running_var")] + "num_batches_tracked"
            if counter not in state:
                completed[counter] = torch.tensor(0, dtype=torch.long)
    return completed


def read_official_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official checkpoint or weights file into one flat state dict (see the module docstring)."""
    return unwrap_state_dict(load_file(path), path)


def convert_state_dict(official: Mapping[str, torch.Tensor], network: nn.Module, convert_key: KeyConverter, *,
                       source: str | Path, description: str = "") -> dict[str, torch.Tensor]:
    """Convert ``official`` into ``network``'s names and check that it fills the network exactly.

    Raises:
        OfficialWeightsError: naming ``source``, the first official key the converter does not place (or places
            where the network has nothing), and the first network entry left empty or of another shape.
    """
    expected = network.state_dict()
    converted: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    unplaced: list[str] = []
    for name, tensor in official.items():
        placed = convert_key(name, tensor)
        if placed is None or placed[0] not in expected or placed[0] in converted:
            unplaced.append(name)
            continue
        converted[placed[0]] = placed[1]
        origin[placed[0]] = name
    missing = [name for name in expected if name not in converted]
    mismatched = [name for name in converted if tuple(converted[name].shape) != tuple(expected[name].shape)]
    if unplaced or missing or mismatched:
        what = f" as {description}" if description else ""
        problems = []
        if unplaced:
            problems.append(f"{len(unplaced)} official key(s) have no place in the network, first `{unplaced[0]}`")
        if missing:
            problems.append(f"{len(missing)} network entr(ies) get no official weight, first `{missing[0]}`")
        if mismatched:
            name = mismatched[0]
            problems.append(f"`{origin[name]}` has shape {tuple(converted[name].shape)} but the network's `{name}` "
                            f"has {tuple(expected[name].shape)}")
        advise = getattr(convert_key, "advise", None)
        advice = [] if advise is None else [text for text in dict.fromkeys(map(advise, unplaced[:1] + missing[:1]))
                                            if text]
        fix = " ".join(advice) or ("Check that the file is the official checkpoint of this experiment's network "
                                   "(same architecture, classes and options).")
        raise OfficialWeightsError(f"{source} does not fit {type(network).__name__}{what}: {'; '.join(problems)}. {fix}")
    return {name: converted[name].to(dtype=expected[name].dtype) for name in expected}


def load_converted(network: nn.Module, official: Mapping[str, torch.Tensor], convert_key: KeyConverter, *,
                   source: str | Path, description: str = "") -> None:
    """:func:`convert_state_dict` then ``load_state_dict`` (strict) into ``network``."""
    network.load_state_dict(convert_state_dict(official, network, convert_key, source=source,
                                               description=description))


def load_official_file(network: nn.Module, path: str | Path, convert_key: KeyConverter, *,
                       description: str = "") -> None:
    """Read an official file and load it into ``network`` (what a ``weights_path=`` argument does)."""
    load_converted(network, read_official_weights(path), convert_key, source=path, description=description)


def rename_by_prefix(table: Mapping[str, str]) -> KeyConverter:
    """A converter that renames keys by their longest matching prefix in ``table`` (official -> suite)."""
    prefixes = sorted(table, key=len, reverse=True)

    def convert(name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        for prefix in prefixes:
            if name.startswith(prefix):
                return table[prefix] + name[len(prefix):], tensor
        return None

    return convert


def _all_tensors(state: Mapping[Any, Any]) -> bool:
    return bool(state) and all(isinstance(value, torch.Tensor) for value in state.values())


__all__ = ["KeyConverter", "OfficialFormat", "OfficialWeightsError", "convert_state_dict", "is_lightning_checkpoint",
           "load_converted", "load_file", "load_official_file", "read_official_weights", "rename_by_prefix",
           "unwrap_state_dict", "with_batch_counters"]
