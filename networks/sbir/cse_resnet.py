"""CSE-ResNet-50: SE-ResNet-50 whose squeeze-and-excitation blocks also read the domain tag (SAKE Sec. 3.2).

SAKE (arXiv:1904.03208 Sec. 3.2, Fig. 2) feeds a binary domain tag (0 = sketch, 1 = photo) into every SE
block: the official code concatenates the tag to the output of the squeeze FC (after its ReLU), so the
excitation FC takes ``channels // reduction + 1`` inputs; the extra input column is initialised to zero,
so a pretrained SE-ResNet-50 computes exactly what it did before fine-tuning starts.

The backbone is the zoo's torchvision ResNet-50 (``networks.classification.resnet50``), taken by reference:
each bottleneck's last BatchNorm (``bn3``) is swapped for :class:`BatchNormThenExcitation`, a BatchNorm2d
that applies the conditional SE block to its output. SE-ResNet puts the excitation exactly there (on the
residual branch, before the identity is added), and the torchvision parameter names stay as they are, so
plain torchvision ResNet-50 weights load unchanged and SE parameters live under ``...bn3.excitation.``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from networks.classification.torchvision_models import resnet50
from visionsuite.errors import ConfigError

SKETCH, PHOTO = 0, 1
FEATURE_DIM = 2048  # ResNet-50's pooled features: 512 x Bottleneck.expansion


class ConditionalExcitation(nn.Module):
    """SE block conditioned on the domain tag (SAKE Sec. 3.2): squeeze FC, ReLU, [tag], excitation FC, sigmoid.

    Args:
        channels: channels of the feature map it rescales.
        reduction: squeeze ratio (16 in SE-ResNet-50).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.squeeze = nn.Linear(channels, hidden)
        self.excite = nn.Linear(hidden + 1, channels)
        with torch.no_grad():
            self.excite.weight[:, hidden].zero_()  # the domain-tag column starts at zero (official code)
        self.domain: torch.Tensor | None = None  # (N, 1) tags, set by CSEResNet.forward

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.domain is None:
            raise RuntimeError("ConditionalExcitation needs the domain tag: call CSEResNet(images, domain).")
        pooled = features.mean(dim=(2, 3))
        hidden = torch.relu(self.squeeze(pooled))
        tag = self.domain.to(hidden.dtype).expand(hidden.shape[0], 1)
        scale = torch.sigmoid(self.excite(torch.cat([hidden, tag], dim=1)))
        return features * scale[:, :, None, None]


class BatchNormThenExcitation(nn.BatchNorm2d):
    """The bottleneck's last BatchNorm followed by its conditional SE block (keeps ``bn3``'s names)."""

    def __init__(self, batch_norm: nn.BatchNorm2d, reduction: int = 16) -> None:
        super().__init__(batch_norm.num_features, eps=batch_norm.eps, momentum=batch_norm.momentum)
        self.load_state_dict(batch_norm.state_dict())
        self.excitation = ConditionalExcitation(batch_norm.num_features, reduction)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.excitation(super().forward(features))


class CSEResNet(nn.Module):
    """A torchvision ResNet with bottleneck blocks turned into CSE-ResNet (SAKE Sec. 3.2).

    ``forward(images, domain)`` returns the classifier's logits (``resnet.fc``: the 1000-way ImageNet head of
    the teacher); :meth:`features` returns the pooled 2048-d features the student's heads read.

    Args:
        resnet: a torchvision ResNet made of :class:`~torchvision.models.resnet.Bottleneck` blocks.
        reduction: squeeze ratio of the SE blocks.
    """

    def __init__(self, resnet: ResNet, reduction: int = 16) -> None:
        super().__init__()
        self.resnet = resnet
        self.excitations: list[ConditionalExcitation] = []
        for stage in (resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4):
            for block in stage:
                if not isinstance(block, Bottleneck):
                    raise ConfigError(f"CSEResNet needs bottleneck blocks; got {type(block).__name__}.")
                block.bn3 = BatchNormThenExcitation(block.bn3, reduction)
                self.excitations.append(block.bn3.excitation)

    @property
    def num_classes(self) -> int:
        return int(self.resnet.fc.out_features)

    def _set_domain(self, domain: torch.Tensor | int | None, batch: int, device: torch.device) -> None:
        if domain is None:
            tags = None
        else:
            tags = torch.as_tensor(domain, device=device).float().reshape(-1, 1)
            if tags.shape[0] not in (1, batch):
                raise ValueError(f"domain has {tags.shape[0]} tags for a batch of {batch} images.")
        for excitation in self.excitations:
            excitation.domain = tags

    def features(self, images: torch.Tensor, domain: torch.Tensor | int) -> torch.Tensor:
        """Pooled features (N, 2048) of ``images`` under the domain tags ``domain`` (0 sketch, 1 photo)."""
        net = self.resnet
        self._set_domain(domain, images.shape[0], images.device)
        try:
            x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
            x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
            return torch.flatten(net.avgpool(x), 1)
        finally:
            self._set_domain(None, 0, images.device)

    def forward(self, images: torch.Tensor, domain: torch.Tensor | int) -> torch.Tensor:
        return self.resnet.fc(self.features(images, domain))


def load_cse_weights(model: CSEResNet, weights_path: str | Path) -> CSEResNet:
    """Load an SE-ResNet-50 / CSE-ResNet-50 state dict (this module's names, with or without ``resnet.``).

    An excitation weight without the domain column (a plain SE-ResNet-50 converted to these names) gets a zero
    column appended, which is the paper's initialisation of CSE-ResNet-50 from SE-ResNet-50.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise ConfigError(f"weights_path={path}: no such file (CSE/SE-ResNet-50 weights cannot be downloaded here).")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    state = {key if key.startswith("resnet.") else f"resnet.{key}": value for key, value in state.items()}
    own = model.state_dict()
    for key, value in list(state.items()):
        if key.endswith("excitation.excite.weight") and key in own and value.shape[1] + 1 == own[key].shape[1]:
            state[key] = torch.cat([value, value.new_zeros(value.shape[0], 1)], dim=1)
    missing = [key for key in own if key not in state]
    mismatched = [key for key in own if key in state and state[key].shape != own[key].shape]
    if missing or mismatched:
        raise ConfigError(f"weights_path={path} does not fit CSE-ResNet (missing: {', '.join(missing[:3]) or '-'}; "
                          f"shape mismatch: {', '.join(mismatched[:3]) or '-'}).")
    model.load_state_dict({key: state[key] for key in own})
    return model


def _has_excitation_weights(weights_path: str | Path) -> bool:
    path = Path(weights_path)
    if not path.is_file():
        raise ConfigError(f"weights_path={path}: no such file (ImageNet weights cannot be downloaded here).")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return any("excitation" in key for key in state)


def cse_resnet50(num_classes: int = 1000, *, weights_path: str | Path | None = None, reduction: int = 16) -> CSEResNet:
    """CSE-ResNet-50 (SAKE Sec. 3.2) on the zoo's ResNet-50.

    Args:
        num_classes: width of the classifier (1000: the ImageNet head the teacher distils from).
        weights_path: local ImageNet weights: a (C)SE-ResNet-50 state dict in this module's names (the
            paper's initialisation), or a plain torchvision ResNet-50 state dict (loaded through the zoo's
            ``load_local_weights``; the SE blocks then start from their random initialisation).
        reduction: squeeze ratio of the SE blocks.
    """
    plain_weights = weights_path is not None and not _has_excitation_weights(weights_path)
    model = CSEResNet(resnet50(num_classes, weights_path=weights_path if plain_weights else None), reduction)
    if weights_path is not None and not plain_weights:
        load_cse_weights(model, weights_path)
    return model


def cse_resnet(num_classes: int, *, blocks: Sequence[int] = (1, 1, 1, 1), width_per_group: int = 16,
               reduction: int = 16, weights_path: str | Path | None = None) -> CSEResNet:
    """A reduced CSE-ResNet for CPU demos: torchvision's bottleneck ResNet with fewer blocks / narrower inner
    convolutions; same 2048-d features, SE blocks and domain tag as CSE-ResNet-50 (``blocks=(3, 4, 6, 3)``,
    ``width_per_group=64``). ``weights_path``: a CSE-ResNet state dict of the same shape (optional).
    """
    if len(blocks) != 4 or min(blocks) < 1:
        raise ConfigError(f"blocks={list(blocks)}: give four stage depths >= 1 (ResNet-50: [3, 4, 6, 3]).")
    resnet = ResNet(Bottleneck, list(blocks), num_classes=num_classes, width_per_group=width_per_group)
    model = CSEResNet(resnet, reduction)
    return load_cse_weights(model, weights_path) if weights_path is not None else model
