"""ImageNet backbones of the zoo taken from torchvision by reference (not copied): ResNet-50, MobileNetV2.

Nothing is downloaded: ImageNet-pretrained weights load from a local file (``weights_path``), a state dict
saved by ``torch.save(model.state_dict())`` or a torchvision weights file, through the suite's reader and strict
conversion of official files (:mod:`visionsuite.official_weights`). Re-ID (MCNL, arXiv:1909.10848
Sec. 4.1) uses ResNet-50 with the last stride set to 1 (``last_stride=1``): a 256x128 input then gives
16x8 final feature maps instead of 8x4.

Both take the per-layer widths of Pruning from Scratch (arXiv:1909.12579): ``channels`` / ``width_multiplier`` set the
widths of their channel groups (ResNet-50: the bottlenecks' two inner widths; MobileNetV2: the stem, every hidden
width and the last 1x1 conv) and ``gate_layer`` adds a channel gate to each, through
:mod:`networks.classification.channel_surgery`. At the defaults they are torchvision's networks unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models

from networks.classification.channel_surgery import (
    mobilenet_v2_default_channels,
    resize_mobilenet_v2,
    resize_resnet50,
    resnet50_default_channels,
)
from networks.classification.prunable import GateLayer, checked_channels
from networks.classification.registry import register_backbone
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

    Raises:
        ValueError: ``weights_path=<file>: ...``, the file is missing, unreadable or does not fit ``model``.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise ValueError(f"weights_path={path}: no such file. ImageNet weights cannot be downloaded here; "
                         "save them once with torch.save(torchvision.models.<name>(weights=...).state_dict(), "
                         "'<file>.pth') on a machine with internet and pass that file.")
    try:
        state = read_official_weights(path)
        if skip_classifier:
            own = model.state_dict()
            for key in filter(_is_head, own):
                if key not in state or tuple(state[key].shape) != tuple(own[key].shape):
                    state[key] = own[key]
        load_converted(model, state, _SameNames(), source=f"weights_path={path}", description="ImageNet weights")
    except OfficialWeightsError as error:
        message = str(error)  # it starts with the source (weights_path=<file>) or the path
        raise ValueError(message if message.startswith("weights_path=") else f"weights_path={message}") from None
    return model


def _is_head(key: str) -> bool:
    return key.startswith(("fc.", "classifier."))


@register_backbone
def resnet50(num_classes: int = 1000, *, weights_path: str | Path | None = None, last_stride: int = 2,
             zero_init_residual: bool = False, channels: list[int] | None = None, width_multiplier: float = 1.0,
             gate_layer: GateLayer | None = None) -> models.ResNet:
    """torchvision's ResNet-50 (25.6M parameters at 1000 classes).

    Args:
        num_classes: width of the final linear layer.
        weights_path: local ImageNet weights; a head of another width is left at its initialisation.
        last_stride: stride of ``layer4``'s first block (1 for re-ID, MCNL Sec. 4.1).
        zero_init_residual: zero the last BN of each residual branch (torchvision option).
        channels: the 32 inner widths (``conv1``, ``conv2`` of each bottleneck); default
            :func:`~networks.classification.channel_surgery.resnet50_default_channels` at ``width_multiplier``.
        width_multiplier: scales the default inner widths (the residual stream keeps torchvision's widths).
        gate_layer: builds the channel gate placed after each bottleneck's ``bn1`` and ``bn2`` (none when ``None``).
    """
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride={last_stride}: use 1 or 2.")
    widths = checked_channels(channels, resnet50_default_channels(width_multiplier), "resnet50")
    model = models.resnet50(weights=None, num_classes=num_classes, zero_init_residual=zero_init_residual)
    if widths != resnet50_default_channels() or gate_layer is not None:
        resize_resnet50(model, widths, gate_layer, zero_init_residual)
    if weights_path is not None:
        load_local_weights(model, weights_path, skip_classifier=num_classes != 1000)
    if last_stride == 1:
        first = model.layer4[0]
        first.conv2.stride = (1, 1)
        first.downsample[0].stride = (1, 1)
    return model


@register_backbone
def mobilenet_v2(num_classes: int = 1000, *, weights_path: str | Path | None = None, dropout: float = 0.2,
                 width_mult: float = 1.0, channels: list[int] | None = None, width_multiplier: float = 1.0,
                 gate_layer: GateLayer | None = None) -> models.MobileNetV2:
    """torchvision's MobileNetV2 (3.5M parameters at width 1 and 1000 classes).

    Args:
        num_classes: outputs of the classifier.
        weights_path: local ImageNet weights; a head of another width is left at its initialisation.
        dropout: dropout before the classifier (torchvision option).
        width_mult: torchvision's own multiplier of every width, rounded to multiples of 8 (its ``width_mult``).
        channels: the 18 prunable widths (stem, the 16 hidden widths, the last 1x1 conv); default
            :func:`~networks.classification.channel_surgery.mobilenet_v2_default_channels` at ``width_multiplier``.
        width_multiplier: scales the default prunable widths only (block outputs keep torchvision's widths, as the
            Pruning-from-Scratch code's expansion 40 scales its channel list only).
        gate_layer: builds the channel gate of every prunable width (none when ``None``).
    """
    if width_mult != 1.0 and (channels is not None or width_multiplier != 1.0 or gate_layer is not None):
        raise ValueError(f"width_mult={width_mult}: the prunable widths (channels, width_multiplier, gate_layer) are "
                         "those of torchvision's width_mult=1 network; use one or the other.")
    widths = checked_channels(channels, mobilenet_v2_default_channels(width_multiplier), "mobilenet_v2")
    model = models.mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
    if widths != mobilenet_v2_default_channels() or gate_layer is not None:
        resize_mobilenet_v2(model, widths, gate_layer)
    if weights_path is not None:
        load_local_weights(model, weights_path, skip_classifier=num_classes != 1000)
    return model


__all__ = ["IMAGENET_WEIGHTS_ADVICE", "load_local_weights", "mobilenet_v2", "resnet50"]
