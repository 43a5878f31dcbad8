"""CenterNet keypoint-triplet detection (arXiv:1904.08189): pooling, Hourglass, heads, targets, losses, decoding."""

from networks.detection.centernet import CenterNet, centernet52, centernet104, centernet_tiny
from networks.detection.corner_pooling import (
    CascadeCornerPooling,
    CenterPooling,
    bottom_pool,
    left_pool,
    right_pool,
    top_pool,
)
from networks.detection.decoding import CenterNetDecoder, DecoderSettings, Detections
from networks.detection.hourglass import StackedHourglass
from networks.detection.losses import LossWeights, centernet_loss
from networks.detection.targets import build_targets, collate_targets, gaussian_radius

__all__ = [
    "CascadeCornerPooling",
    "CenterNet",
    "CenterNetDecoder",
    "CenterPooling",
    "DecoderSettings",
    "Detections",
    "LossWeights",
    "StackedHourglass",
    "bottom_pool",
    "build_targets",
    "centernet104",
    "centernet52",
    "centernet_loss",
    "centernet_tiny",
    "collate_targets",
    "gaussian_radius",
    "left_pool",
    "right_pool",
    "top_pool",
]
