"""The backbone zoo of the image-classification layer (used by classification, AugRefine, Pruning from Scratch,
the logit defense and MCNL). The NAS code keeps its own networks in ``networks.nas``.

Each family's file registers its constructors (``@register_backbone``, :mod:`networks.classification.registry`);
importing this package imports them all, and ``build_backbone(name, num_classes, **options)`` builds any of them.
The options a family takes (``channels``, ``width_multiplier``, ``gate_layer``, ``weights_path``...) are
documented on its constructor.
"""

from __future__ import annotations

from networks.classification import cifar_resnet, mobilenet_v1, torchvision_models, vgg, wide_resnet  # noqa: F401
from networks.classification.registry import BackboneSpec, backbone_names, build_backbone, register_backbone
from networks.classification.torchvision_models import load_local_weights, mobilenet_v2, resnet50

__all__ = ["BackboneSpec", "backbone_names", "build_backbone", "load_local_weights", "mobilenet_v2",
           "register_backbone", "resnet50"]
