"""ImageNet backbones of the zoo taken from torchvision by reference (not copied): ResNet-50, MobileNetV2.

Nothing is downloaded: ImageNet-pretrained weights load from a local file (``weights_path``), a state dict
saved by ``torch.save(model.state_dict())`` or a torchvision weights file, through the suite's reader and strict
conversion of official files (:mod:`visionsuite.official_weights`). Re-ID (MCNL, arXiv:1909.10848
Sec. 4.1) uses ResNet-50 with the last stride set to 1 (``last_stride=1``): a 256x128 input then gives
16x8 final feature maps instead of 8x4.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models

from visionsuite.errors import ConfigError
from visionsuite.official_weights import OfficialWeightsError, load_converted, read_official_weights

IMAGENET_WEIGHTS_ADVICE = ("Pass ImageNet weights of this backbone in torchvision's names: save them once with "
                           "torch.save(torchvision.models.<name>(weights=...).state_dict(), '<file>.pth') on a "
                           "machine with internet.")


class _SameNames:
    """The converter of a file already in the model's names (torchvision's), with the ImageNet-weights advice."""

    def __call__(self, name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
        return name, tensor

    def advise(self, key: str) -> str:
        return IMAGENET_WEIGHTS_ADVICE


def load_local_weights(model: nn.Module, weights_path: str | Path, *, skip_classifier: bool = False) -> nn.Module:
    """Load a local state-dict file into ``model``; one clear error when the file is missing or does not fit.

    The file is read by :func:`visionsuite.official_weights.read_official_weights` (a bare state dict,
    ``{"state_dict": ...}``, a ``module.`` prefix of ``DataParallel``, a training checkpoint) and checked by its strict
    conversion: every entry of the file is used and every parameter and buffer of ``model`` filled, with equal
    shapes; otherwise the error names the first unmatched key on each side.

    Args:
        model: the network to fill.
        weights_path: a ``.pth`` / ``.pt`` file holding a state dict in the model's (torchvision's) names.
        skip_classifier: keep the model's own head (``fc.`` / ``classifier.``) where the file's has another shape
            or is absent (a 1000-way ImageNet head loaded into a network with another class count) instead of
            failing on it; the head then stays at its initialisation.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise ConfigError(f"weights_path={path}: no such file. ImageNet weights cannot be downloaded here; "
                          "save them once with torch.save(torchvision.models.<name>(weights=...).state_dict(), "
                          "'<file>.pth') on a machine with internet and pass that file.")
    try:
        state = read_official_weights(path)
    except OfficialWeightsError as error:  # its message starts with the path
        raise OfficialWeightsError(f"weights_path={error}") from None
    if skip_classifier:
        own = model.state_dict()
        for key in filter(_is_head, own):
            if key not in state or tuple(state[key].shape) != tuple(own[key].shape):
                state[key] = own[key]
    load_converted(model, state, _SameNames(), source=f"weights_path={path}",
                   description="ImageNet weights")
    return model


def _is_head(key: str) -> bool:
    return key.startswith(("fc.", "classifier."))


def resnet50(num_classes: int = 1000, *, weights_path: str | Path | None = None, last_stride: int = 2,
             zero_init_residual: bool = False) -> models.ResNet:
    """torchvision's ResNet-50 (25.6M parameters at 1000 classes).

    Args:
        num_classes: width of the final linear layer.
        weights_path: local ImageNet weights; a head of another width is left at its initialisation.
        last_stride: stride of ``layer4``'s first block (1 for re-ID, MCNL Sec. 4.1).
        zero_init_residual: zero the last BN of each residual branch (torchvision option).
    """
    if last_stride not in (1, 2):
        raise ConfigError(f"last_stride={last_stride}: use 1 or 2.")
    model = models.resnet50(weights=None, num_classes=num_classes, zero_init_residual=zero_init_residual)
    if weights_path is not None:
        load_local_weights(model, weights_path, skip_classifier=num_classes != 1000)
    if last_stride == 1:
        first = model.layer4[0]
        first.conv2.stride = (1, 1)
        first.downsample[0].stride = (1, 1)
    return model


def mobilenet_v2(num_classes: int = 1000, *, weights_path: str | Path | None = None,
                 width_multiplier: float = 1.0, dropout: float = 0.2) -> models.MobileNetV2:
    """torchvision's MobileNetV2 (3.5M parameters at width 1 and 1000 classes)."""
    model = models.mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_multiplier, dropout=dropout)
    if weights_path is not None:
        load_local_weights(model, weights_path, skip_classifier=num_classes != 1000)
    return model
