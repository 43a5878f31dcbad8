"""CenterNet: object detection with keypoint triplets (Duan et al., arXiv:1904.08189).

A stacked Hourglass (``hourglass.py``) followed, per stack, by three pooling modules (``corner_pooling.py``:
cascade corner pooling for the top-left and bottom-right corners, center pooling for the center keypoint)
and seven heads (Sec. 3 and Fig. 2):

* heatmaps of top-left, bottom-right and center keypoints, one channel per class, whose last bias starts at
  ``-2.19`` (= log(0.1 / 0.9): every location starts at probability 0.1, as in focal loss, RetinaNet);
* 1-d embeddings of the top-left and bottom-right corners (corners of one object get close values);
* 2-d offsets of all three keypoints (the fraction lost when a location is floored to the output grid).

Each head is a 3x3 conv (no BN) + ReLU + 1x1 conv. In training every stack's heads are returned (the loss
averages them: intermediate supervision); in evaluation only the last stack runs its heads.

Constructors: :func:`centernet104` (two stacks, the paper's main model), :func:`centernet52` (one stack,
otherwise identical) and :func:`centernet_tiny` (the embedded shapes demo on CPU). They are the one source of
each preset: build a network with one of them (the suite's model configs do) rather than restating its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from networks.detection.corner_pooling import CascadeCornerPooling, CenterPooling
from networks.detection.hourglass import StackedHourglass

#: Initial bias of the heatmap heads: sigmoid(-2.19) = 0.1 (focal-loss prior of RetinaNet).
HEATMAP_BIAS = -2.19
#: The keypoint types, in the order the heads are stored.
KEYPOINTS = ("tl", "br", "ct")
#: Output names of one stack: ``{tl,br,ct}_heatmap``, ``{tl,br}_embedding``, ``{tl,br,ct}_offset``.
OUTPUT_NAMES = (
    "tl_heatmap", "br_heatmap", "ct_heatmap", "tl_embedding", "br_embedding", "tl_offset", "br_offset", "ct_offset",
)  # fmt: skip

CenterNetOutputs = dict[str, torch.Tensor]

CENTERNET_CHANNELS = (256, 256, 384, 384, 384, 512)
CENTERNET_BLOCKS = (2, 2, 2, 2, 2, 4)


def prediction_head(
    in_channels: int, hidden_channels: int, out_channels: int, bias: float | None = None
) -> nn.Sequential:
    """3x3 conv (no BN) + ReLU + 1x1 conv; the 1x1 bias is set to ``bias`` when given."""
    head = nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, 3, padding=1, bias=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden_channels, out_channels, 1),
    )
    if bias is not None:
        nn.init.constant_(head[-1].bias, bias)
    return head


class CenterNetHeads(nn.Module):
    """The pooling modules and seven heads of one stack (Fig. 2 of arXiv:1904.08189)."""

    def __init__(self, num_classes: int, channels: int, pool_channels: int = 128) -> None:
        super().__init__()
        self.tl_pool = CascadeCornerPooling(channels, "top_left", pool_channels)
        self.br_pool = CascadeCornerPooling(channels, "bottom_right", pool_channels)
        self.ct_pool = CenterPooling(channels, pool_channels)
        self.heatmaps = nn.ModuleDict(
            {name: prediction_head(channels, channels, num_classes, HEATMAP_BIAS) for name in KEYPOINTS}
        )
        self.embeddings = nn.ModuleDict(
            {name: prediction_head(channels, channels, 1) for name in ("tl", "br")}
        )
        self.offsets = nn.ModuleDict({name: prediction_head(channels, channels, 2) for name in KEYPOINTS})

    def forward(self, features: torch.Tensor) -> CenterNetOutputs:
        pooled = {"tl": self.tl_pool(features), "br": self.br_pool(features), "ct": self.ct_pool(features)}
        outputs: CenterNetOutputs = {}
        for name in KEYPOINTS:
            outputs[f"{name}_heatmap"] = self.heatmaps[name](pooled[name])
        for name in ("tl", "br"):
            outputs[f"{name}_embedding"] = self.embeddings[name](pooled[name])
        for name in KEYPOINTS:
            outputs[f"{name}_offset"] = self.offsets[name](pooled[name])
        return outputs


class CenterNet(nn.Module):
    """Stacked Hourglass + per-stack CenterNet heads.

    ``forward(images)`` returns a list with one output dict per stack in training mode and a one-element list
    (the last stack) in eval mode (``all_stacks=True``: every stack in either mode). Each dict maps
    :data:`OUTPUT_NAMES` to raw (pre-sigmoid) maps of shape ``(N, C | 1 | 2, H/4, W/4)``. The official
    checkpoints of Duankaiwen/CenterNet load through ``networks.detection.official``.

    Args:
        num_classes: Object classes (80 on COCO).
        stacks: Hourglass stacks (104: 2, 52: 1).
        channels: Channels per hourglass level.
        blocks: Residual blocks per hourglass level.
        stem_channels: Channels of the 7x7 stem convolution.
        head_channels: Channels of the features after each hourglass and inside the heads (256).
        pool_channels: Channels inside the pooling modules (128).
        in_channels: Image channels.
    """

    def __init__(
        self,
        num_classes: int,
        stacks: int = 2,
        channels: Sequence[int] = CENTERNET_CHANNELS,
        blocks: Sequence[int] = CENTERNET_BLOCKS,
        stem_channels: int = 128,
        head_channels: int = 256,
        pool_channels: int = 128,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        #: The constructor's arguments (what the Lightning module records in its hyper-parameters).
        self.config = {"num_classes": num_classes, "stacks": stacks, "channels": [int(c) for c in channels],
                       "blocks": [int(b) for b in blocks], "stem_channels": stem_channels,
                       "head_channels": head_channels, "pool_channels": pool_channels, "in_channels": in_channels}
        self.backbone = StackedHourglass(stacks, channels, blocks, stem_channels, head_channels, in_channels)
        self.heads = nn.ModuleList(
            CenterNetHeads(num_classes, head_channels, pool_channels) for _ in range(stacks)
        )

    @property
    def stacks(self) -> int:
        return len(self.heads)

    def forward(self, images: torch.Tensor, all_stacks: bool | None = None) -> list[CenterNetOutputs]:
        """Raw maps of every stack (``all_stacks``; by default in training mode) or of the last one.

        ``all_stacks=True`` in eval mode is the official training forward (``kp._train`` of
        Duankaiwen/CenterNet ``models/py_utils/kp.py``) with BatchNorm's running statistics, before it gathers
        the embeddings and offsets at the ground-truth locations.
        """
        every_stack = self.training if all_stacks is None else all_stacks
        features = self.backbone(images, all_stacks=every_stack)
        heads = list(self.heads) if every_stack else [self.heads[-1]]
        return [head(stack_features) for head, stack_features in zip(heads, features, strict=True)]


def centernet104(num_classes: int = 80, **kwargs: int) -> CenterNet:
    """CenterNet-104: two-stack Hourglass-104 (arXiv:1904.08189, Sec. 4.2; 44.9 AP single-scale on test-dev)."""
    return CenterNet(num_classes, stacks=2, channels=CENTERNET_CHANNELS, blocks=CENTERNET_BLOCKS, **kwargs)


def centernet52(num_classes: int = 80, **kwargs: int) -> CenterNet:
    """CenterNet-52: one-stack Hourglass-52, otherwise as CenterNet-104 (41.6 AP single-scale on test-dev)."""
    return CenterNet(num_classes, stacks=1, channels=CENTERNET_CHANNELS, blocks=CENTERNET_BLOCKS, **kwargs)


def centernet_tiny(num_classes: int = 3, **kwargs: int) -> CenterNet:
    """A small CenterNet (one stack, depth 3, 32-64 channels) that trains on the shapes demo on a CPU."""
    defaults: dict = {
        "stacks": 1,
        "channels": (32, 48, 48, 64),
        "blocks": (1, 1, 1, 1),
        "stem_channels": 16,
        "head_channels": 32,
        "pool_channels": 16,
    }
    return CenterNet(num_classes, **{**defaults, **kwargs})


def heatmap_prior_bias(prior: float = 0.1) -> float:
    """``log(prior / (1 - prior))``: the heatmap bias that makes every location start at ``prior`` (-2.197 for 0.1)."""
    return math.log(prior / (1.0 - prior))
