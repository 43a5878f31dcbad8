"""Re-ID embedding networks: a convolutional trunk, global average pooling, the pooled vector as the feature.

MCNL (arXiv:1909.10848, Sec. 4.1) uses ResNet-50 (ImageNet weights when available) with the last stride set
to 1 and global average pooling: 2048-d features, trained with the metric loss only (no BN-neck, no
classifier). :func:`resnet50_trunk` builds it from the backbone zoo; :func:`reduced_resnet_trunk` is a
narrow ResNet for CPU demos only (the paper's experiments use ResNet-50). The official checkpoints of this
network load through :mod:`networks.reid.official`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torchvision.models.resnet import BasicBlock

from networks.classification.torchvision_models import resnet50

#: The torchvision ResNet-50 modules that make the trunk, in order (the trunk's index ``i`` holds the ``i``-th).
RESNET50_TRUNK_LAYERS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class Trunk(nn.Sequential):
    """An ``nn.Sequential`` of feature layers that knows its output width (``out_channels``)."""

    def __init__(self, layers: Sequence[nn.Module], out_channels: int) -> None:
        super().__init__(*layers)
        self.out_channels = int(out_channels)


def resnet50_trunk(weights_path: str | Path | None = None, last_stride: int = 1) -> Trunk:
    """ResNet-50 of the zoo without its pooling and classifier (2048 channels; last stride 1 for re-ID).

    Args:
        weights_path: a local ImageNet state dict (nothing is downloaded); ``None`` trains from scratch.
        last_stride: stride of ``layer4`` (1 in MCNL: 16x8 maps for 256x128 inputs).
    """
    model = resnet50(1000, weights_path=weights_path, last_stride=last_stride)
    return Trunk([getattr(model, name) for name in RESNET50_TRUNK_LAYERS], out_channels=2048)


def reduced_resnet_trunk(widths: Sequence[int] = (16, 32, 64, 128), blocks: Sequence[int] = (1, 1, 1, 1),
                         last_stride: int = 1, weights_path: str | Path | None = None) -> Trunk:
    """A narrow ResNet (torchvision's BasicBlock, ResNet-18 layout at reduced widths) for demos on a CPU.

    Same stem (7x7 stride-2 conv + max-pool) and stage strides as ResNet-50 with last stride ``last_stride``,
    so the feature map of a 64x32 demo image is 4x2 (stride 16), as a 256x128 image gives 16x8 in the paper.
    There are no ImageNet weights for it: ``weights_path`` must stay ``None``.
    """
    if weights_path is not None:
        raise ValueError(f"weights_path must be None: the reduced demo ResNet has no ImageNet weights (got "
                         f"{weights_path}); a pretrained ResNet-50 is resnet50_trunk's.")
    if len(widths) != len(blocks) or not widths:
        raise ValueError(f"widths {list(widths)} and blocks {list(blocks)} need the same, non-zero length.")
    layers: list[nn.Module] = [
        nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ]
    channels = widths[0]
    for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        stride = 1 if stage == 0 else (last_stride if stage == len(widths) - 1 else 2)
        for index in range(count):
            block_stride = stride if index == 0 else 1
            downsample = None
            if block_stride != 1 or channels != width:
                downsample = nn.Sequential(nn.Conv2d(channels, width, 1, stride=block_stride, bias=False),
                                           nn.BatchNorm2d(width))
            layers.append(BasicBlock(channels, width, stride=block_stride, downsample=downsample))
            channels = width
    return Trunk(layers, out_channels=channels)


class ReIDEmbedding(nn.Module):
    """Trunk + global average pooling: ``(B, 3, H, W)`` images to ``(B, C)`` features (MCNL Sec. 4.1).

    The pooling is an average pool whose window is the whole map, the operation of the official
    ``BaseNetBuilder.forward`` (models/baseline_model.py), so an official model's features differ from the
    official code's only by the convolutions' float32 rounding (``mean`` over the map sums in another order, which
    moved the flip-summed test feature of the golden check by up to 1.1e-5).

    Args:
        trunk: the feature layers (a :class:`Trunk`, e.g. :func:`resnet50_trunk`).
    """

    def __init__(self, trunk: Trunk) -> None:
        super().__init__()
        self.trunk = trunk
        self.feature_dim = trunk.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.trunk(images)
        return F.avg_pool2d(maps, maps.shape[2:]).flatten(1)


__all__ = ["RESNET50_TRUNK_LAYERS", "ReIDEmbedding", "Trunk", "reduced_resnet_trunk", "resnet50_trunk"]
