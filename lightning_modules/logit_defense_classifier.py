"""The classifier the logit defense (arXiv:1906.10973) protects: loading it, and its identity.

A classifier is given by a config entry::

    classifier:
      checkpoint: <file>          # a suite classifier checkpoint (.ckpt), or local weights (.pth) with `backbone`
      module: lightning_modules.image_classifier.ImageClassifier   # the LightningModule class of a .ckpt
      backbone: null              # with a .pth: a zoo backbone (resnet50...) that the weights are loaded into
      num_classes: null           # with `backbone`: its class count (1000 for torchvision's ImageNet weights)

Its identity (file name, size and SHA-256 of the weights file, and the class) is stored in the logit
dataset's manifest, so a defender evaluated against another classifier than the one whose logits trained
it gets a warning naming both.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

from torch import nn

from visionsuite.errors import ConfigError, VisionSuiteError

log = logging.getLogger(__name__)

DEFAULT_CLASSIFIER_MODULE = "lightning_modules.image_classifier.ImageClassifier"
_HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def classifier_identity(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a classifier: its weights file's name, size and SHA-256, and how it is built."""
    path = Path(str(spec.get("checkpoint")))
    return {"checkpoint": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size,
            "module": spec.get("module") or DEFAULT_CLASSIFIER_MODULE, "backbone": spec.get("backbone")}


def same_classifier(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Two identities name the same weights (the hash decides; paths may differ between machines)."""
    return bool(first.get("sha256")) and first.get("sha256") == second.get("sha256")


def warn_if_other_classifier(dataset_identity: Mapping[str, Any], defended: Mapping[str, Any], dataset: str) -> bool:
    """Warn (naming both) when the logit dataset ``dataset`` was made by another classifier than ``defended``.

    Returns:
        True when a warning was given.
    """
    if not dataset_identity or same_classifier(dataset_identity, defended):
        return False
    message = (f"The logit dataset {dataset} was made by the classifier {dataset_identity.get('checkpoint')} "
               f"(sha256 {str(dataset_identity.get('sha256'))[:12]}) but the classifier defended here is "
               f"{defended.get('checkpoint')} (sha256 {str(defended.get('sha256'))[:12]}): the defender learned "
               "another network's logits, so its numbers say little about this one.")
    log.warning(message)
    warnings.warn(message, UserWarning, stacklevel=2)
    return True


def _import(qualified: str) -> Any:
    module_name, _, name = qualified.rpartition(".")
    try:
        return getattr(import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"classifier.module={qualified!r} is not an importable class ({error}).") from error


def load_classifier(spec: Mapping[str, Any], key: str = "model.classifier") -> nn.Module:
    """The classifier network of ``spec`` (see the module docstring), in eval mode, frozen.

    A LightningModule checkpoint gives its module (its ``forward`` returns logits); ``backbone`` + a weights
    file gives the zoo backbone with those weights.

    Raises:
        ConfigError: the file is missing, or does not load as the named module / backbone (the message
            names the file, the class and the loader's error).
    """
    checkpoint = spec.get("checkpoint")
    if not checkpoint:
        raise ConfigError(f"`{key}.checkpoint` is not set: give the classifier to defend (a suite classifier "
                          f"checkpoint, e.g. phases.classifier.use=<file.ckpt>).")
    path = Path(str(checkpoint))
    if not path.is_file():
        raise ConfigError(f"`{key}.checkpoint`={path}: no such file.")
    backbone = spec.get("backbone")
    if backbone:
        from networks.classification import build_backbone

        num_classes = spec.get("num_classes")
        if not num_classes:
            raise ConfigError(f"`{key}.num_classes` is needed with `{key}.backbone`={backbone!r}.")
        network = build_backbone(str(backbone), int(num_classes), weights_path=str(path))
    else:
        module_class = _import(str(spec.get("module") or DEFAULT_CLASSIFIER_MODULE))
        try:
            network = module_class.load_from_checkpoint(str(path), map_location="cpu")
        except VisionSuiteError:
            raise
        except Exception as error:  # a truncated file, another module's checkpoint, a missing key...
            raise ConfigError(f"`{key}.checkpoint`={path} does not load as {module_class.__name__} "
                              f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). Give "
                              f"a checkpoint written by {module_class.__name__} (the classifier phase's "
                              f"best_checkpoint) or set `{key}.module` to the class that wrote it.") from None
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


def classifier_num_classes(network: nn.Module, spec: Mapping[str, Any]) -> int | None:
    """The class count of a loaded classifier (its hparams, or ``spec.num_classes``)."""
    hparams = getattr(network, "hparams", None)
    if hparams is not None and hparams.get("num_classes") is not None:
        return int(hparams["num_classes"])
    return int(spec["num_classes"]) if spec.get("num_classes") else None


__all__ = ["DEFAULT_CLASSIFIER_MODULE", "classifier_identity", "classifier_num_classes", "file_sha256",
           "load_classifier", "same_classifier", "warn_if_other_classifier"]
