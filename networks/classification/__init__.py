"""The backbone zoo of the image-classification layer (used by classification, AugRefine, Pruning from
Scratch, the logit defense, MCNL and SAKE). The NAS code keeps its own networks in ``networks.nas``."""

from networks.classification.torchvision_models import load_local_weights, mobilenet_v2, resnet50

__all__ = ["load_local_weights", "mobilenet_v2", "resnet50"]
