"""Training targets of CenterNet (arXiv:1904.08189, Sec. 3.5; CornerNet arXiv:1808.01244, Sec. 3.2-3.3).

For each ground-truth box ``(x1, y1, x2, y2)`` (input-image pixels) of class ``c`` and the output/input
ratio ``r`` of the network (128/511 for CenterNet-511), three keypoints are placed on the output grid:
top-left ``(r*x1, r*y1)``, bottom-right ``(r*x2, r*y2)`` and center ``(r*(x1+x2)/2, r*(y1+y2)/2)``. Each
location is floored; the fraction is the offset target. The heatmap of class ``c`` receives an unnormalised
Gaussian ``exp(-(dx^2 + dy^2) / (2 sigma^2))`` around the location, clipped to a ``(2R+1)``-square of radius
``R`` (the Gaussian radius below, from the box size on the output grid) and combined with ``max``;
``sigma = (2R+1)/6`` for corners and ``(2R+1)/5`` for centers (official code).

Gaussian radius (CornerNet Sec. 3.2): the largest ``R`` such that a box whose two corners are each moved by up
to ``R`` still has IoU >= ``min_overlap`` (0.7 in CenterNet's code, 0.3 in CornerNet's paper) with the
ground truth. It is the smallest of three worst cases (w, h the box size, t = min_overlap):

1. both corners moved the same way (the box translated by ``(R, R)``): ``R^2 - (w+h) R + wh(1-t)/(1+t) = 0``;
2. both corners moved inwards: ``4R^2 - 2(w+h) R + (1-t) wh = 0``;
3. both corners moved outwards: ``4t R^2 + 2t(w+h) R + (t-1) wh = 0``.

``formula="exact"`` takes the smallest positive root of each. ``formula="official"`` reproduces the CornerNet/
CenterNet code, which divides by 2 instead of 2a and takes the larger root of (1) and (2) (a known slip that
gives larger radii); it is what the published models were trained with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

RadiusFormula = Literal["official", "exact"]
CORNER_SIGMA_DIVISOR = 6.0
CENTER_SIGMA_DIVISOR = 5.0


def gaussian_radius(
    height: float, width: float, min_overlap: float = 0.7, formula: RadiusFormula = "official"
) -> float:
    """Radius (output-grid cells) around a corner inside which a box keeps IoU >= ``min_overlap``.

    Args:
        height: Box height on the output grid.
        width: Box width on the output grid.
        min_overlap: The IoU a box with corners inside the radius keeps (0.7 for CenterNet).
        formula: ``"official"`` (the code the paper's numbers come from) or ``"exact"`` (see module docstring).
    """
    if not 0.0 < min_overlap < 1.0:
        raise ValueError(f"min_overlap must be in (0, 1), got {min_overlap}")
    t, size_sum, area = min_overlap, height + width, height * width
    # (a, b, c) of a R^2 + b R + c = 0 for the three worst cases.
    equations = (
        (1.0, -size_sum, area * (1 - t) / (1 + t)),
        (4.0, -2.0 * size_sum, (1 - t) * area),
        (4.0 * t, 2.0 * t * size_sum, (t - 1) * area),
    )
    radii = []
    for index, (a, b, c) in enumerate(equations):
        root = math.sqrt(max(b * b - 4 * a * c, 0.0))
        if formula == "official":
            # CornerNet's code: (b' + sqrt) / 2 with b' = -b for (1), (2) and b' = -b for (3) (no 1/(2a)).
            radii.append((-b + root) / 2.0)
        elif formula == "exact":
            radii.append((-b - root) / (2 * a) if index < 2 else (-b + root) / (2 * a))
        else:
            raise ValueError(f"formula must be 'official' or 'exact', got {formula!r}")
    return max(min(radii), 0.0)


def gaussian_kernel(radius: int, sigma: float) -> torch.Tensor:
    """``(2R+1, 2R+1)`` unnormalised Gaussian ``exp(-(x^2+y^2) / (2 sigma^2))`` with 1 at the center."""
    coordinates = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(coordinates[:, None] ** 2 + coordinates[None, :] ** 2) / (2 * sigma * sigma))
    kernel[kernel < torch.finfo(torch.float32).eps * kernel.max()] = 0  # as the official code: drop the tail
    return kernel


def draw_gaussian(heatmap: torch.Tensor, x: int, y: int, radius: int, sigma_divisor: float) -> None:
    """Write ``max(heatmap, gaussian)`` around ``(x, y)`` in the ``(H, W)`` map, in place, clipped at borders."""
    diameter = 2 * radius + 1
    kernel = gaussian_kernel(radius, diameter / sigma_divisor)
    height, width = heatmap.shape
    left, right = min(x, radius), min(width - x, radius + 1)
    top, bottom = min(y, radius), min(height - y, radius + 1)
    if left + right <= 0 or top + bottom <= 0:
        return
    region = heatmap[y - top : y + bottom, x - left : x + right]
    patch = kernel[radius - top : radius + bottom, radius - left : radius + right]
    torch.maximum(region, patch, out=region)


@dataclass
class CenterNetTargets:
    """Targets of one image on an ``(H, W)`` output grid with ``N`` objects.

    Heatmaps are ``(C, H, W)`` in [0, 1] (1 exactly at each keypoint); ``*_index`` are ``(N,)`` flat
    locations ``y * W + x``; ``*_offset`` are ``(N, 2)`` fractions ``(dx, dy)`` in [0, 1).
    """

    tl_heatmap: torch.Tensor
    br_heatmap: torch.Tensor
    ct_heatmap: torch.Tensor
    tl_index: torch.Tensor
    br_index: torch.Tensor
    ct_index: torch.Tensor
    tl_offset: torch.Tensor
    br_offset: torch.Tensor
    ct_offset: torch.Tensor


def build_targets(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    output_size: Sequence[int],
    input_size: Sequence[int],
    min_overlap: float = 0.7,
    radius_formula: RadiusFormula = "official",
) -> CenterNetTargets:
    """Heatmaps, locations and offsets of one image's boxes (see the module docstring).

    Args:
        boxes: ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in input-image pixels (with positive size).
        labels: ``(N,)`` class indices in ``[0, num_classes)``.
        num_classes: Heatmap channels.
        output_size: ``(H, W)`` of the output maps.
        input_size: ``(H, W)`` of the network input (the ratio output/input maps pixels to the grid).
        min_overlap: IoU kept inside the Gaussian radius (0.7).
        radius_formula: ``"official"`` or ``"exact"`` (see :func:`gaussian_radius`).
    """
    out_h, out_w = int(output_size[0]), int(output_size[1])
    ratio_y, ratio_x = out_h / float(input_size[0]), out_w / float(input_size[1])
    heatmaps = torch.zeros(3, num_classes, out_h, out_w)
    count = len(boxes)
    indices = torch.zeros(3, count, dtype=torch.int64)
    offsets = torch.zeros(3, count, 2)
    boxes = boxes.to(torch.float64).reshape(-1, 4)
    for k in range(count):
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        label = int(labels[k])
        if not 0 <= label < num_classes:
            raise ValueError(f"label {label} outside [0, {num_classes})")
        points = (
            (x1 * ratio_x, y1 * ratio_y),
            (x2 * ratio_x, y2 * ratio_y),
            ((x1 + x2) / 2 * ratio_x, (y1 + y2) / 2 * ratio_y),
        )
        width = math.ceil((x2 - x1) * ratio_x)
        height = math.ceil((y2 - y1) * ratio_y)
        radius = max(0, int(gaussian_radius(height, width, min_overlap, radius_formula)))
        for kind, (fx, fy) in enumerate(points):
            x = min(max(int(fx), 0), out_w - 1)
            y = min(max(int(fy), 0), out_h - 1)
            divisor = CENTER_SIGMA_DIVISOR if kind == 2 else CORNER_SIGMA_DIVISOR
            draw_gaussian(heatmaps[kind, label], x, y, radius, divisor)
            indices[kind, k] = y * out_w + x
            offsets[kind, k, 0] = fx - x
            offsets[kind, k, 1] = fy - y
    return CenterNetTargets(
        heatmaps[0],
        heatmaps[1],
        heatmaps[2],
        indices[0],
        indices[1],
        indices[2],
        offsets[0],
        offsets[1],
        offsets[2],
    )


def collate_targets(targets: Sequence[CenterNetTargets]) -> dict[str, torch.Tensor]:
    """Stack a batch: heatmaps ``(B, C, H, W)``; indices ``(B, M)`` and offsets ``(B, M, 2)`` padded to the
    largest object count ``M`` (at least 1), with ``mask`` ``(B, M)`` true on real objects."""
    batch = {
        name: torch.stack([getattr(t, name) for t in targets])
        for name in ("tl_heatmap", "br_heatmap", "ct_heatmap")
    }
    most = max([len(t.tl_index) for t in targets] + [1])
    mask = torch.zeros(len(targets), most, dtype=torch.bool)
    for name, shape in (("index", ()), ("offset", (2,))):
        for kind in ("tl", "br", "ct"):
            padded = torch.zeros(
                len(targets), most, *shape, dtype=getattr(targets[0], f"{kind}_{name}").dtype
            )
            for b, t in enumerate(targets):
                values = getattr(t, f"{kind}_{name}")
                padded[b, : len(values)] = values
            batch[f"{kind}_{name}"] = padded
    for b, t in enumerate(targets):
        mask[b, : len(t.tl_index)] = True
    batch["mask"] = mask
    return batch
