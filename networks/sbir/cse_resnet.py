"""CSE-ResNet-50: SE-ResNet-50 whose squeeze-and-excitation blocks also read the domain tag (SAKE Sec. 3.2).

SAKE (arXiv:1904.03208 Sec. 3.2, Fig. 2) feeds a binary domain tag (0 = sketch, 1 = photo) into every SE
block: the official code (qliu24/SAKE ``src/senet.py``, ``CSEModule``) concatenates the tag to the output of the
squeeze FC after its ReLU, so the excitation FC takes ``channels // reduction + 1`` inputs; the extra input
column is initialised to zero, so a pretrained SE-ResNet-50 computes exactly what it did before fine-tuning
starts.

The network follows the official layout, which is the Caffe SE-ResNet-50 that SAKE starts from (Cadene's
``pretrainedmodels`` ``se_resnet50``), not torchvision's ResNet-50:

* a bottleneck downsamples in its first 1x1 convolution (``conv1``), not in the 3x3 one;
* the stem (``layer0``) is a 7x7/2 convolution, BatchNorm, ReLU and a 3x3/2 max-pool with ``ceil_mode=True`` and
  no padding;
* the SE FCs are linear layers (``se_module.fc1`` / ``fc2``), the excitation applied after ``bn3``, before the
  identity is added;
* the features are the global average of ``layer4``: the official ``AvgPool2d(7)`` at the 224 x 224 input it is
  used with (the only size it accepts), any size here (the reduced demo networks run at 64 x 64).

Parameter names are the official ones (``layer0.conv1``, ``layerN.i.se_module.fc2``, ``last_linear``...), so the
converters of :mod:`networks.sbir.official` only reshape.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from networks.sbir.official import load_se_resnet_weights

SKETCH, PHOTO = 0, 1
EXPANSION = 4
FEATURE_DIM = 512 * EXPANSION  # layer4's channels: the pooled features the heads read (2048)
RESNET50_BLOCKS = (3, 4, 6, 3)

Domain = torch.Tensor | int | float


class ConditionalExcitation(nn.Module):
    """SE block conditioned on the domain tag (SAKE Sec. 3.2): average, ``fc1``, ReLU, [tag], ``fc2``, sigmoid.

    Args:
        channels: channels of the feature map it rescales.
        reduction: squeeze ratio (16 in SE-ResNet-50).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden + 1, channels)
        with torch.no_grad():
            self.fc2.weight[:, hidden].zero_()  # the domain-tag column starts at zero (official initialisation)

    def forward(self, features: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.fc1(features.mean(dim=(2, 3))))
        scale = torch.sigmoid(self.fc2(torch.cat([hidden, tags.to(hidden.dtype)], dim=1)))
        return features * scale[:, :, None, None]


class CSEBottleneck(nn.Module):
    """Caffe-style SE-ResNet bottleneck with the conditional SE block (stride in ``conv1``).

    Args:
        in_channels: input channels.
        planes: the stage's base width (64, 128, 256, 512); the block outputs ``4 * planes`` channels.
        width: channels of the inner 1x1 / 3x3 convolutions (``planes`` in ResNet-50).
        stride: 2 in the first block of layers 2-4.
        reduction: squeeze ratio of the SE block.
    """

    def __init__(self, in_channels: int, planes: int, width: int, stride: int = 1, reduction: int = 16) -> None:
        super().__init__()
        out_channels = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = ConditionalExcitation(out_channels, reduction)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride,
                                                      bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.se_module(out, tags) + residual)


class CSEResNet(nn.Module):
    """CSE-ResNet in the official (Caffe SE-ResNet) layout; see the module docstring.

    ``forward(images, domain)`` returns the classifier's logits (``last_linear``: the 1000-way ImageNet head of the
    teacher); :meth:`features` returns the pooled 2048-d features the student's heads read. The student has no
    use for ``last_linear`` once its heads are initialised from it: :meth:`remove_classifier`.

    Args:
        num_classes: width of ``last_linear``.
        blocks: bottlenecks per stage (ResNet-50: 3, 4, 6, 3).
        width_per_group: inner width of a stage's bottlenecks relative to 64 (ResNet-50: 64, i.e. the stage's
            base width; 16: a quarter of it), as torchvision's ``width_per_group``.
        reduction: squeeze ratio of the SE blocks.
    """

    def __init__(self, num_classes: int = 1000, blocks: Sequence[int] = RESNET50_BLOCKS, width_per_group: int = 64,
                 reduction: int = 16) -> None:
        super().__init__()
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"blocks must be four stage depths >= 1 (ResNet-50: [3, 4, 6, 3]), got {list(blocks)}.")
        if width_per_group < 1 or reduction < 1:
            raise ValueError(f"width_per_group and reduction must be at least 1, got {width_per_group} and {reduction}.")
        self.layer0 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)),
            ("bn1", nn.BatchNorm2d(64)),
            ("relu1", nn.ReLU(inplace=True)),
            ("pool", nn.MaxPool2d(3, stride=2, ceil_mode=True)),  # Caffe's pooling: ceil_mode instead of padding
        ]))
        in_channels = 64
        stages = []
        for index, (planes, depth) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
            width = max(1, planes * width_per_group // 64)
            stage = []
            for block in range(depth):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(CSEBottleneck(in_channels, planes, width, stride, reduction))
                in_channels = planes * EXPANSION
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.last_linear: nn.Linear | None = nn.Linear(FEATURE_DIM, num_classes)
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation of the convolutions, BatchNorm at identity; the tag columns stay zero. (Only networks
        trained from scratch, the demo's, keep this: the paper's start from ImageNet weights.)"""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def stages(self) -> tuple[nn.Sequential, ...]:
        return self.layer1, self.layer2, self.layer3, self.layer4

    @property
    def excitations(self) -> list[ConditionalExcitation]:
        """The conditional SE blocks, in order."""
        return [block.se_module for stage in self.stages for block in stage]

    @property
    def num_classes(self) -> int:
        if self.last_linear is None:
            raise RuntimeError("This CSE-ResNet's classifier was removed (remove_classifier): it has no classes.")
        return int(self.last_linear.out_features)

    def remove_classifier(self) -> nn.Linear:
        """Drop ``last_linear`` (the student reads only :meth:`features`) and return it."""
        if self.last_linear is None:
            raise RuntimeError("This CSE-ResNet's classifier was already removed.")
        classifier, self.last_linear = self.last_linear, None
        return classifier

    @staticmethod
    def domain_tags(domain: Domain, batch: int, reference: torch.Tensor) -> torch.Tensor:
        """``domain`` (one tag, or one per image) as the ``(batch, 1)`` column the SE blocks append."""
        tags = torch.as_tensor(domain, device=reference.device).to(reference.dtype).reshape(-1, 1)
        if tags.shape[0] == 1:
            return tags.expand(batch, 1)
        if tags.shape[0] != batch:
            raise ValueError(f"domain has {tags.shape[0]} tags for a batch of {batch} images.")
        return tags

    def features(self, images: torch.Tensor, domain: Domain) -> torch.Tensor:
        """Pooled features (N, 2048) of ``images`` under the domain tags ``domain`` (0 sketch, 1 photo)."""
        tags = self.domain_tags(domain, images.shape[0], images)
        x = self.layer0(images)
        for stage in self.stages:
            for block in stage:
                x = block(x, tags)
        return x.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor, domain: Domain) -> torch.Tensor:
        if self.last_linear is None:
            raise RuntimeError("This CSE-ResNet's classifier was removed (remove_classifier); use features().")
        return self.last_linear(self.features(images, domain))


def cse_resnet50(num_classes: int = 1000, *, weights_path: str | Path | None = None, reduction: int = 16) -> CSEResNet:
    """CSE-ResNet-50 (SAKE Sec. 3.2), the official layout.

    Args:
        num_classes: width of the classifier (1000: the ImageNet head the teacher distils from).
        weights_path: ImageNet weights as downloaded: Cadene's ``se_resnet50-ce0d4300.pth`` (what the official
            code starts from; its SE 1x1 convolutions become linear layers and the tag column starts at zero), or a
            CSE-ResNet-50 state dict in the official names (the official ``cse_resnet50``'s). Converted by
            :func:`networks.sbir.official.load_se_resnet_weights`.
        reduction: squeeze ratio of the SE blocks.
    """
    model = CSEResNet(num_classes, RESNET50_BLOCKS, 64, reduction)
    if weights_path is not None:
        load_se_resnet_weights(model, weights_path)
    return model


def cse_resnet(num_classes: int, *, blocks: Sequence[int] = (1, 1, 1, 1), width_per_group: int = 16,
               reduction: int = 16, weights_path: str | Path | None = None) -> CSEResNet:
    """A reduced CSE-ResNet for CPU demos: fewer bottlenecks and narrower inner convolutions, same layout, 2048-d
    features, SE blocks and domain tag as CSE-ResNet-50 (``blocks=(3, 4, 6, 3)``, ``width_per_group=64``).
    ``weights_path``: weights of the same shape, read as :func:`cse_resnet50` reads them (optional).
    """
    model = CSEResNet(num_classes, blocks, width_per_group, reduction)
    if weights_path is not None:
        load_se_resnet_weights(model, weights_path)
    return model
