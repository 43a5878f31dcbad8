"""The classifier the logit defense (arXiv:1906.10973) protects: read from a file, frozen, with its identity.

The classifier is given as a file, in one of two forms:

* a suite classifier checkpoint (``.ckpt``, e.g. the classifier phase's ``best_checkpoint``), read by the
  ``load_from_checkpoint`` of the LightningModule class that wrote it (``module``, a class the config passes);
* local weights (``.pth``) of a zoo ``backbone`` with ``num_classes`` outputs (torchvision's VGG-16-BN / ResNet-50
  ImageNet files, as the paper's ImageNet experiments use), read by the shared reader of official files.

Its identity (file name, size and SHA-256 of the weights file, and how it was read) is stored in the logit
dataset's manifest, so a defender evaluated against another classifier than the one whose logits trained it
gets a warning naming both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from networks.classification import build_backbone
from visionsuite.errors import VisionSuiteError
from visionsuite.io import is_unset

_HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def same_classifier(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Two identities name the same weights (the hash decides; paths may differ between machines)."""
    return bool(first.get("sha256")) and first.get("sha256") == second.get("sha256")


class DefendedClassifier(nn.Module):
    """A trained classifier under attack: always in eval mode, its parameters frozen.

    Args:
        network: The classifier (images -> logits).
        identity: What identifies its weights (``checkpoint``, ``sha256``, ``bytes``, ``module``, ``backbone``).
        num_classes: Its number of logits, when known.
    """

    def __init__(self, network: nn.Module, identity: Mapping[str, Any], num_classes: int | None = None) -> None:
        super().__init__()
        self.network = network
        self.identity = dict(identity)
        self.num_classes = None if num_classes is None else int(num_classes)
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> DefendedClassifier:
        """Stays in eval mode: the attacks and the defender see the classifier as it is deployed."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)


def load_classifier(checkpoint: str | Path | None, backbone: str | None = None, num_classes: int | None = None,
                    module: type | None = None) -> DefendedClassifier | None:
    """The classifier stored in ``checkpoint`` (see the module docstring); None when no file is given.

    Args:
        checkpoint: The file: a suite classifier checkpoint, or local weights of ``backbone``.
        backbone: With local weights: the zoo backbone (``resnet50``, ``vgg16_bn``...) they belong to.
        num_classes: With ``backbone``: its class count (1000 for torchvision's ImageNet weights).
        module: The LightningModule class that wrote a suite checkpoint (its ``load_from_checkpoint`` reads it;
            its forward gives logits).

    Raises:
        ValueError: naming the argument: the file is missing or does not load, ``num_classes`` is missing with
            ``backbone``, or no ``module`` is given for a suite checkpoint.
    """
    if is_unset(checkpoint):
        return None
    path = Path(str(checkpoint))
    if not path.is_file():
        raise ValueError(f"checkpoint={path}: no such file")
    name = None if module is None else f"{module.__module__}.{module.__qualname__}"
    if backbone:
        if not num_classes:
            raise ValueError(f"num_classes is needed with backbone={backbone!r} (its class count, 1000 for "
                             "torchvision's ImageNet weights)")
        try:
            network = build_backbone(str(backbone), int(num_classes), weights_path=str(path))
        except ValueError as error:  # the zoo names its own arguments: say which of ours is wrong
            text = str(error)
            for theirs, ours in (("weights_path=", "checkpoint="), ("name=", "backbone=")):
                if text.startswith(theirs):
                    raise ValueError(ours + text[len(theirs):]) from None
            raise
    else:
        if module is None:
            raise ValueError(f"module is not set: give the LightningModule class that wrote {path}")
        try:
            network = module.load_from_checkpoint(str(path), map_location="cpu")
        except VisionSuiteError:
            raise
        except Exception as error:  # a truncated file, another module's checkpoint, a missing key...
            first_line = str(error).splitlines()[0] if str(error) else ""
            raise ValueError(f"checkpoint={path} does not load as {module.__name__} ({type(error).__name__}: "
                             f"{first_line}). Give a checkpoint written by {module.__name__} (the classifier "
                             "phase's best_checkpoint), the module class that wrote it, or weights with their "
                             "backbone and num_classes.") from None
        hparams = getattr(network, "hparams", None)
        if num_classes is None and hparams is not None and hparams.get("num_classes") is not None:
            num_classes = int(hparams["num_classes"])
    identity = {"checkpoint": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size,
                "module": name, "backbone": backbone}
    return DefendedClassifier(network, identity, num_classes)


__all__ = ["DefendedClassifier", "file_sha256", "load_classifier", "same_classifier"]
