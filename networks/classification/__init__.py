"""The backbone zoo of the image-classification layer (used by classification, AugRefine, Pruning from
Scratch, the logit defense, MCNL and SAKE). The NAS code keeps its own networks in ``networks.nas``.

Every backbone is built by ``build_backbone(name, num_classes, **options)``; the options a family takes
(``channels``, ``width_multiplier``, ``gate_layer``, ``weights_path``...) are documented on its constructor.
Constructors are imported on first use, so importing the zoo stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from torch import nn

from networks.classification.torchvision_models import load_local_weights, mobilenet_v2, resnet50
from visionsuite.errors import ConfigError

# name -> "module:function", the function taking (num_classes, **options) and returning an nn.Module.
BACKBONES: dict[str, str] = {
    "resnet20": "networks.classification.cifar_resnet:resnet20",
    "resnet56": "networks.classification.cifar_resnet:resnet56",
    "resnet110": "networks.classification.cifar_resnet:resnet110",
    "vgg16_bn": "networks.classification.vgg:vgg16_bn",
    "mobilenet_v1": "networks.classification.mobilenet_v1:mobilenet_v1",
    "wrn28_10": "networks.classification.wide_resnet:wrn28_10",
    "resnet50": "networks.classification.torchvision_models:resnet50",
    "mobilenet_v2": "networks.classification.torchvision_models:mobilenet_v2",
}


def backbone_constructor(name: str) -> Any:
    """The constructor registered under ``name``; an error listing the known names otherwise."""
    if name not in BACKBONES:
        raise ConfigError(f"Unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}.")
    module_name, _, function = BACKBONES[name].partition(":")
    return getattr(import_module(module_name), function)


def build_backbone(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build the zoo's backbone ``name`` with ``num_classes`` outputs (see the family's constructor)."""
    return backbone_constructor(name)(num_classes, **options)


__all__ = ["BACKBONES", "backbone_constructor", "build_backbone", "load_local_weights", "mobilenet_v2", "resnet50"]
