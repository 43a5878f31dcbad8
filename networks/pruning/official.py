"""The official per-layer channel lists and checkpoints of Pruning from Scratch (arXiv:1909.12579).

The official code (``frankwang345/pruning-from-scratch``) describes a pruned CIFAR network by one Python list,
the ``cfg`` of its ``models/resnet.py`` / ``models/vgg.py`` constructors:

* ``script/prune_model.py`` starts from ``models.expanded_cfg(e)[arch]`` and overwrites every entry that is not
  ``'M'`` with the number of channels kept in that layer, then pickles the list (``misc.dump_pickle``: plain
  ``pickle``, highest protocol) to ``logs/seed-<seed>/<dataset>-<arch>/channel-<e>-sparsity-<s>/pruned_cfg-<p>.pkl``;
* CIFAR ResNets (``resnet20/56/110``): one ``int`` per basic block, its inner width (``conv1``'s output),
  ``3n`` entries; VGG-16-BN: 17 entries, the 13 conv widths with ``'M'`` (a max-pool) after the 2nd, 4th, 7th and
  10th convolution;
* ``script/train_pruned.py`` reads that pickle (same folder, chosen by ``-s``, ``-e``, ``-p``), builds
  ``models.<arch>(10, e, pruned_cfg)``, trains it from scratch and saves ``torch.save(model.state_dict(), ...)``
  (a bare state dict, no ``module.`` prefix) as ``logs/seed-<seed>/<dataset>-<arch>/channel-<e>-pruned-<p>[-B]/
  best_checkpoint.pth``; ``script/learn_gates.py`` saves the gated expanded network the same way
  (``checkpoint.pth``, the gates as ``<block>.gates``).

The second constructor argument ``e`` (``-e``, default 80) is the ResNet's **residual width**: stem and stages
``e / 2e / 4e``, not pruned. The list does not record it; :func:`official_structure` takes it from its ``expansion``
argument, else from the folder name ``channel-<e>-...`` the official scripts write, else the official default 80. For VGG the list gives every width and ``e`` only sets the widths it was cut from.

:func:`official_structure` turns such a list into the suite's :class:`~networks.pruning.structure.Structure`, so
a pruned network is built from such a list like from a ``structure.json``
(:func:`networks.pruning.structure.pruned_network`);
:data:`OFFICIAL_NETWORKS` gives each family's key converter for the official checkpoints
(``visionsuite.official_weights``).
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from networks.classification import cifar_resnet, vgg
from networks.pruning.cost import MultiplyAddTable, meta_network
from networks.pruning.families import prunable_family
from networks.pruning.structure import Structure
from visionsuite.complexity import count_parameters
from visionsuite.errors import ConfigError
from visionsuite.io import is_unset
from visionsuite.official_weights import KeyConverter

log = logging.getLogger(__name__)

OFFICIAL_REPOSITORY = "frankwang345/pruning-from-scratch"
#: ``-e`` of script/prune_model.py and script/train_pruned.py.
DEFAULT_EXPANSION = 80
POOL = "M"
CRITERION = "official_cfg"
#: The folder script/prune_model.py writes into: ``channel-<e>-sparsity-<s>``; script/train_pruned.py's
#: checkpoint folder ``channel-<e>-pruned-<p>``.
_EXPANSION_FOLDER = re.compile(r"channel-(\d+)-(?:sparsity|pruned)-")
#: The file name script/prune_model.py writes: ``pruned_cfg-%.2f.pkl`` % p.
_TARGET_NAME = re.compile(r"pruned_cfg-(\d*\.?\d+)\.pkl")
_PICKLE_SUFFIXES = (".pkl", ".pickle")


@dataclass(frozen=True)
class OfficialNetwork:
    """One network of the official code and how it maps onto the suite's family of the same name.

    Attributes:
        name: the suite's family name (= the official ``-a``).
        title: readable name for messages.
        file: the official file that defines it.
        base_width: ``expanded_cfg``'s ``c`` at the default width (ResNet 16, VGG 64); ``e / base_width`` is the
            suite's ``width_multiplier``.
        convert_key: official state-dict key -> the suite network's key.
    """

    name: str
    title: str
    file: str
    base_width: int
    convert_key: KeyConverter

    def cfg_layout(self) -> list[int | str]:
        """The official ``expanded_cfg(base_width)[name]``: default widths, with ``'M'`` where VGG pools."""
        if self.name == "vgg16_bn":
            return list(vgg.VGG16_LAYOUT)
        return list(cifar_resnet.default_channels(int(self.name.removeprefix("resnet"))))

    def width_multiplier(self, expansion: int) -> float:
        """The suite's ``width_multiplier`` of the official expansion ``e``."""
        return expansion / self.base_width

    def describe(self) -> str:
        return f"{self.title} ({OFFICIAL_REPOSITORY} {self.file})"


OFFICIAL_NETWORKS: dict[str, OfficialNetwork] = {
    **{f"resnet{depth}": OfficialNetwork(f"resnet{depth}", f"CIFAR ResNet-{depth}", "models/resnet.py", 16,
                                         cifar_resnet.official_key_to_suite) for depth in (20, 56, 110)},
    "vgg16_bn": OfficialNetwork("vgg16_bn", "CIFAR VGG-16-BN", "models/vgg.py", 64, vgg.official_key_to_suite),
}


def official_network(name: str) -> OfficialNetwork:
    """The official network of family ``name``; a ``ValueError`` naming the families the official CIFAR code has."""
    if name not in OFFICIAL_NETWORKS:
        raise ValueError(f"name={name}: the official Pruning from Scratch CIFAR files (per-layer channel lists, "
                         f"checkpoints) exist for {', '.join(OFFICIAL_NETWORKS)}; {name} has none.")
    return OFFICIAL_NETWORKS[name]


def is_official_cfg(path: str | Path) -> bool:
    """Whether ``path`` is a pickled channel list (``.pkl`` / ``.pickle``, or a file that starts like a pickle)."""
    file = Path(path)
    if file.suffix.lower() in _PICKLE_SUFFIXES:
        return True
    try:
        with open(file, "rb") as stream:
            return stream.read(1) == b"\x80"  # the PROTO opcode every pickle of protocol >= 2 starts with
    except OSError:
        return False


class _ListOnlyUnpickler(pickle.Unpickler):
    """Unpickles numbers, strings and containers only: a channel list needs no class, and no code runs."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it refers to {module}.{name}")


def read_official_cfg(path: str | Path) -> list[Any]:
    """The list pickled in ``path`` (script/prune_model.py's ``pruned_cfg``); entries are checked later."""
    file = Path(path)
    try:
        with open(file, "rb") as stream:
            loaded = _ListOnlyUnpickler(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as error:
        raise ConfigError(f"{file}: not an official per-layer channel list (a pickled list of ints and 'M' "
                          f"written by script/prune_model.py): {error or type(error).__name__}.") from None
    if not isinstance(loaded, list | tuple):
        raise ConfigError(f"{file}: holds a {type(loaded).__name__}, not the per-layer channel list (a list "
                          "of ints, with 'M' for VGG's max-pools) that script/prune_model.py writes.")
    return list(loaded)


def _layout_text(layout: list[int | str]) -> str:
    pools = [index for index, entry in enumerate(layout) if entry == POOL]
    where = f", 'M' at positions {pools}" if pools else ", no 'M'"
    return f"{len(layout)} entries{where}"


def _fitting_networks(cfg: list[Any]) -> list[str]:
    """The official networks whose list has ``cfg``'s length and 'M' positions."""
    found = []
    for name, network in OFFICIAL_NETWORKS.items():
        layout = network.cfg_layout()
        if len(layout) == len(cfg) and all((entry == POOL) == (given == POOL)
                                           for entry, given in zip(layout, cfg, strict=True)):
            found.append(name)
    return found


def cfg_channels(cfg: list[Any], network: OfficialNetwork, source: str) -> list[int]:
    """The per-layer widths of an official list for ``network`` (``'M'`` dropped), checked entry by entry.

    Raises:
        ConfigError: naming ``source``: a list of another length (and the network it would fit), an ``'M'``
            where the network has a convolution or the reverse, an entry that is not an ``int``, or below 1.
    """
    layout = network.cfg_layout()
    if len(cfg) != len(layout):
        fits = [name for name in _fitting_networks(cfg) if name != network.name]
        hint = f" (the layout of {fits[0]}: build that backbone)" if fits else ""
        raise ConfigError(f"{source}: {len(cfg)} entries, but the official {network.name} list has "
                          f"{_layout_text(layout)}{hint}.")
    channels = []
    for index, (expected, value) in enumerate(zip(layout, cfg, strict=True)):
        if expected == POOL or value == POOL:
            if expected != value:
                what = "a max-pool ('M')" if expected == POOL else "a convolution (an int)"
                raise ConfigError(f"{source}: entry {index} is {value!r}, but {network.name} has {what} there "
                                  f"({_layout_text(layout)}).")
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: entry {index} is {value!r} ({type(value).__name__}); every layer's width "
                              "must be an int.")
        if value < 1:
            raise ConfigError(f"{source}: entry {index} is {value}; every layer keeps at least one channel (a "
                              "layer without channels cannot be built).")
        channels.append(value)
    return channels


def official_expansion(path: str | Path, explicit: int | None = None) -> tuple[int, str]:
    """The official ``-e`` of a list or checkpoint: ``explicit``, else the ``channel-<e>-`` folder the official
    scripts write it into, else the official default 80; with how it was found (for messages)."""
    if not is_unset(explicit):
        value = int(explicit)  # type: ignore[arg-type]
        if value < 1:
            raise ValueError(f"official_expansion={explicit}: the official -e is a channel count >= 1.")
        return value, "official_expansion"
    folder = Path(path).resolve().parent.name
    match = _EXPANSION_FOLDER.match(folder)
    if match:
        return int(match.group(1)), f"its folder {folder}"
    return DEFAULT_EXPANSION, "the official default -e 80"


def official_target(path: str | Path) -> float | None:
    """The pruned ratio ``p`` in an official list's file name (``pruned_cfg-<p>.pkl``), or ``None``."""
    match = _TARGET_NAME.fullmatch(Path(path).name)
    return float(match.group(1)) if match else None


def official_structure(path: str | Path, *, backbone: str | None = None, num_classes: int = 10, input_size: int = 32,
                       expansion: int | None = None) -> Structure:
    """A :class:`Structure` from an official per-layer channel list (module docstring).

    Args:
        path: the pickled list (``pruned_cfg-<p>.pkl``).
        backbone: the configured family; ``None``: the one whose official layout the list has.
        num_classes, input_size: of the network whose parameters and multiply-adds are recorded.
        expansion: the official ``-e`` (the ResNet's residual width); ``None``: :func:`official_expansion`.
    """
    file = Path(path)
    source = str(file)
    cfg = read_official_cfg(file)
    if backbone is None:
        fits = _fitting_networks(cfg)
        if not fits:
            layouts = "; ".join(f"{name}: {_layout_text(network.cfg_layout())}"
                                for name, network in OFFICIAL_NETWORKS.items())
            raise ConfigError(f"{source}: a list of {len(cfg)} entries fits no official network ({layouts}).")
        backbone = fits[0]
    if backbone not in OFFICIAL_NETWORKS:
        raise ConfigError(f"{source}: an official per-layer channel list (script/prune_model.py), but the official "
                          f"CIFAR files exist for {', '.join(OFFICIAL_NETWORKS)}; {backbone} has none.")
    network = OFFICIAL_NETWORKS[backbone]
    channels = cfg_channels(cfg, network, source)
    try:
        e, found_in = official_expansion(file, expansion)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None
    width_multiplier = network.width_multiplier(e)
    family = prunable_family(network.name)
    full = family.default_channels(width_multiplier)
    for index, (kept, width) in enumerate(zip(channels, full, strict=True)):
        if kept > width:
            raise ConfigError(f"{source}: layer {index} keeps {kept} channels, more than the {width} of "
                              f"{network.name} at expansion -e {e} ({found_in}); give official_expansion, the -e the "
                              "list was pruned at.")
    pruned = meta_network(family.build, num_classes, channels=channels, width_multiplier=width_multiplier)
    groups = family.groups_of(pruned)
    madds = MultiplyAddTable(pruned, groups, input_size).multiply_adds(channels)
    reference = meta_network(family.build, num_classes, width_multiplier=1.0)
    reference_madds = MultiplyAddTable(reference, family.groups_of(reference), input_size).multiply_adds(
        family.default_channels(1.0))
    achieved = 1.0 - madds / reference_madds
    target = official_target(file)
    return Structure(
        backbone=network.name, num_classes=num_classes, input_size=input_size, width_multiplier=width_multiplier,
        reference_width_multiplier=1.0, layers=[group.gate for group in groups], full_channels=full,
        channels=channels, kept=[], criterion=CRITERION, target=achieved if target is None else target,
        achieved=round(achieved, 6), params=count_parameters(pruned), madds=madds,
        reference_params=count_parameters(reference), reference_madds=reference_madds,
        extra={"source": str(file), "official_expansion": e, "expansion_from": found_in,
               "target_from": "measured" if target is None else "file name"})


__all__ = ["CRITERION", "DEFAULT_EXPANSION", "OFFICIAL_NETWORKS", "OFFICIAL_REPOSITORY", "OfficialNetwork",
           "cfg_channels", "is_official_cfg", "official_expansion", "official_network", "official_structure",
           "official_target", "read_official_cfg"]
