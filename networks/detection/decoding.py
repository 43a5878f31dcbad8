"""Test-time decoding of CenterNet (arXiv:1904.08189, Sec. 3.2 and 4.2) from heatmaps to boxes.

1. Heatmaps through a sigmoid; 3x3 max-pooling keeps local maxima only (the "NMS" of CornerNet).
2. Top-K (70) locations per keypoint type over all classes; offsets added to the floored locations.
3. Corner pairs: all K x K top-left/bottom-right pairs with score ``(s_tl + s_br) / 2``; pairs of different
   classes, with ``|e_tl - e_br| > 0.5`` or an inverted box are rejected; the 1000 best are kept.
4. Central region (Eq. 1 of the paper): ``n = 3`` when the box area is at most ``150^2`` pixels of the
   original image, else ``n = 5``; ``ctl = ((n+1) tl + (n-1) br) / 2n``, ``cbr = ((n-1) tl + (n+1) br) / 2n``.
   A box is kept only if a center keypoint of its class lies strictly inside; its score becomes
   ``(s_tl + s_br + s_ct) / 3`` with the best such center.
5. Per-class soft-NMS (Gaussian, ``sigma = 0.5``; linear with ``Nt = 0.5`` and hard NMS also available),
   scores below 0.001 dropped, and the 100 best detections of the image kept.

Horizontal-flip testing decodes the image and its mirror and takes the union of their boxes and of their
centers before step 4. Multi-scale testing (``scales = [0.6, 1, 1.2, 1.5, 1.8]``) adds the boxes of every
scale but takes the center keypoints from scale 1 only, as the paper does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch.nn import functional as F
from torchvision.ops import box_iou

SoftNmsMethod = Literal["gaussian", "linear", "hard", "none"]
NetworkFn = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class DecoderSettings:
    """Every number of the decoding; defaults are the paper's / official code's."""

    top_k: int = 70
    embedding_threshold: float = 0.5
    num_candidates: int = 1000
    nms_kernel: int = 3
    small_region_n: int = 3
    large_region_n: int = 5
    region_area_threshold: float = 150.0**2
    soft_nms: SoftNmsMethod = "gaussian"
    soft_nms_sigma: float = 0.5
    soft_nms_iou: float = 0.5
    score_threshold: float = 0.001
    max_detections: int = 100
    flip: bool = True
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.soft_nms not in ("gaussian", "linear", "hard", "none"):
            raise ValueError(f"soft_nms must be gaussian, linear, hard or none, got {self.soft_nms!r}")
        if 1.0 not in tuple(self.scales):
            raise ValueError(f"scales must contain 1 (the centers come from scale 1), got {self.scales}")
        if self.top_k < 1 or self.max_detections < 1 or self.num_candidates < 1:
            raise ValueError("top_k, num_candidates and max_detections must be positive")
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be odd and positive, got {self.nms_kernel}")


@dataclass
class Detections:
    """Detections of one image in original-image pixels.

    ``boxes`` ``(N, 4)`` as ``(x1, y1, x2, y2)`` (the top-left and bottom-right keypoints), ``scores`` ``(N,)``,
    ``labels`` ``(N,)`` contiguous class indices, ``centers`` ``(N, 2)`` the center keypoint that validated each
    box, ``corner_scores`` ``(N, 2)`` and ``center_scores`` ``(N,)`` the keypoint scores.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    centers: torch.Tensor
    corner_scores: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 2))
    center_scores: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: torch.Tensor) -> Detections:
        return Detections(
            self.boxes[index],
            self.scores[index],
            self.labels[index],
            self.centers[index],
            self.corner_scores[index],
            self.center_scores[index],
        )


def keypoint_nms(heat: torch.Tensor, kernel: int = 3) -> torch.Tensor:
    """Zero every score that is not the maximum of its ``kernel x kernel`` neighbourhood."""
    peaks = F.max_pool2d(heat, kernel, stride=1, padding=kernel // 2)
    return heat * (peaks == heat).to(heat.dtype)


def top_keypoints(
    heat: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``k`` of ``(B, C, H, W)`` scores over classes and locations: ``(scores, classes, ys, xs)``, each ``(B, k)``."""
    batch, classes, height, width = heat.shape
    k = min(k, classes * height * width)
    scores, flat = heat.reshape(batch, -1).topk(k)
    labels = flat // (height * width)
    location = flat % (height * width)
    return scores, labels, location // width, location % width


def _gather(feature_map: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``(B, D, H, W)`` values at integer locations ``(B, K)``: ``(B, K, D)``."""
    batch, channels, _, width = feature_map.shape
    index = (ys * width + xs).unsqueeze(1).expand(-1, channels, -1)
    return feature_map.reshape(batch, channels, -1).gather(2, index).transpose(1, 2)


@dataclass
class CornerPairs:
    """Candidate boxes ``(B, D, 4)`` on the output grid, ``scores``/``labels`` ``(B, D)`` (score -1: invalid)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    corner_scores: torch.Tensor


def decode_corner_pairs(outputs: Mapping[str, torch.Tensor], settings: DecoderSettings) -> CornerPairs:
    """Steps 1-3 of the module docstring on one network output (raw logits)."""
    tl_heat = keypoint_nms(torch.sigmoid(outputs["tl_heatmap"].float()), settings.nms_kernel)
    br_heat = keypoint_nms(torch.sigmoid(outputs["br_heatmap"].float()), settings.nms_kernel)
    tl_scores, tl_labels, tl_ys, tl_xs = top_keypoints(tl_heat, settings.top_k)
    br_scores, br_labels, br_ys, br_xs = top_keypoints(br_heat, settings.top_k)
    tl_offset = _gather(outputs["tl_offset"].float(), tl_ys, tl_xs)
    br_offset = _gather(outputs["br_offset"].float(), br_ys, br_xs)
    tl_x, tl_y = tl_xs + tl_offset[..., 0], tl_ys + tl_offset[..., 1]
    br_x, br_y = br_xs + br_offset[..., 0], br_ys + br_offset[..., 1]
    tl_embedding = _gather(outputs["tl_embedding"].float(), tl_ys, tl_xs)[..., 0]
    br_embedding = _gather(outputs["br_embedding"].float(), br_ys, br_xs)[..., 0]

    # (B, K_tl, K_br) grids of every pair.
    boxes = torch.stack(
        torch.broadcast_tensors(tl_x[:, :, None], tl_y[:, :, None], br_x[:, None, :], br_y[:, None, :]),
        dim=-1,
    )
    scores = (tl_scores[:, :, None] + br_scores[:, None, :]) / 2
    invalid = (
        (tl_labels[:, :, None] != br_labels[:, None, :])
        | ((tl_embedding[:, :, None] - br_embedding[:, None, :]).abs() > settings.embedding_threshold)
        | (br_x[:, None, :] < tl_x[:, :, None])
        | (br_y[:, None, :] < tl_y[:, :, None])
    )
    scores = scores.masked_fill(invalid, -1.0)
    corner_scores = torch.stack(torch.broadcast_tensors(tl_scores[:, :, None], br_scores[:, None, :]), dim=-1)
    batch = len(scores)
    scores = scores.reshape(batch, -1)
    count = min(settings.num_candidates, scores.shape[1])
    scores, order = scores.topk(count)
    labels = tl_labels[:, :, None].expand(-1, -1, br_labels.shape[1]).reshape(batch, -1).gather(1, order)
    boxes = boxes.reshape(batch, -1, 4).gather(1, order[..., None].expand(-1, -1, 4))
    corner_scores = corner_scores.reshape(batch, -1, 2).gather(1, order[..., None].expand(-1, -1, 2))
    return CornerPairs(boxes, scores, labels, corner_scores)


def decode_centers(
    outputs: Mapping[str, torch.Tensor], settings: DecoderSettings
) -> tuple[torch.Tensor, ...]:
    """Top-K center keypoints: ``(points (B, K, 2) as (x, y) on the output grid, scores (B, K), labels (B, K))``."""
    heat = keypoint_nms(torch.sigmoid(outputs["ct_heatmap"].float()), settings.nms_kernel)
    scores, labels, ys, xs = top_keypoints(heat, settings.top_k)
    offset = _gather(outputs["ct_offset"].float(), ys, xs)
    return torch.stack([xs + offset[..., 0], ys + offset[..., 1]], dim=-1), scores, labels


def central_regions(boxes: torch.Tensor, settings: DecoderSettings) -> torch.Tensor:
    """``(N, 4)`` central regions (Eq. 1 of arXiv:1904.08189) of ``(N, 4)`` boxes in original-image pixels."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    n = torch.where(
        area <= settings.region_area_threshold, float(settings.small_region_n), float(settings.large_region_n)
    ).to(boxes.dtype)[:, None]
    top_left, bottom_right = boxes[:, :2], boxes[:, 2:]
    region_tl = ((n + 1) * top_left + (n - 1) * bottom_right) / (2 * n)
    region_br = ((n - 1) * top_left + (n + 1) * bottom_right) / (2 * n)
    return torch.cat([region_tl, region_br], dim=1)


def center_region_check(
    candidates: Detections,
    centers: torch.Tensor,
    center_scores: torch.Tensor,
    center_labels: torch.Tensor,
    settings: DecoderSettings,
) -> Detections:
    """Step 4: keep boxes with a same-class center keypoint inside their central region; rescore them.

    ``candidates.scores`` hold the pair scores ``(s_tl + s_br) / 2``; the best (highest-scoring) matching center
    validates a box and the new score is ``(2 * pair score + s_ct) / 3``.
    """
    if len(candidates) == 0 or len(center_scores) == 0:
        return candidates.select(torch.zeros(0, dtype=torch.long))
    regions = central_regions(candidates.boxes, settings)
    x, y = centers[None, :, 0], centers[None, :, 1]
    inside = (
        (x > regions[:, 0:1])
        & (x < regions[:, 2:3])
        & (y > regions[:, 1:2])
        & (y < regions[:, 3:4])
        & (candidates.labels[:, None] == center_labels[None, :])
    )
    matched_scores = torch.where(
        inside, center_scores[None, :], torch.full_like(inside, -1.0, dtype=center_scores.dtype)
    )
    best_score, best = matched_scores.max(dim=1)
    keep = inside.any(dim=1)
    result = candidates.select(keep)
    result.centers = centers[best[keep]]
    result.center_scores = best_score[keep]
    result.scores = (2 * result.scores + result.center_scores) / 3
    return result


def soft_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    method: SoftNmsMethod = "gaussian",
    sigma: float = 0.5,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS (Bodla et al., arXiv:1704.04503) of boxes of one class: ``(kept indices, their new scores)``.

    Repeatedly takes the best box and decays the others' scores by ``exp(-iou^2 / sigma)`` (gaussian),
    ``1 - iou`` when ``iou > iou_threshold`` (linear) or to 0 when ``iou > iou_threshold`` (hard); boxes that
    fall below ``score_threshold`` are dropped. ``none`` keeps every box above the threshold. IoU is that of
    continuous boxes (the official CPU implementation adds one pixel to widths and heights).
    """
    scores = scores.clone()
    if method == "none":
        keep = torch.nonzero(scores >= score_threshold).flatten()
        return keep, scores[keep]
    remaining = torch.nonzero(scores >= score_threshold).flatten()
    kept: list[torch.Tensor] = []
    while remaining.numel() > 0:
        best_position = scores[remaining].argmax()
        best = remaining[best_position]
        kept.append(best)
        remaining = torch.cat([remaining[:best_position], remaining[best_position + 1 :]])
        if remaining.numel() == 0:
            break
        iou = box_iou(boxes[best][None], boxes[remaining])[0]
        if method == "gaussian":
            decay = torch.exp(-(iou * iou) / sigma)
        elif method == "linear":
            decay = torch.where(iou > iou_threshold, 1 - iou, torch.ones_like(iou))
        else:
            decay = torch.where(iou > iou_threshold, torch.zeros_like(iou), torch.ones_like(iou))
        scores[remaining] = scores[remaining] * decay
        remaining = remaining[scores[remaining] >= score_threshold]
    keep = torch.stack(kept) if kept else torch.zeros(0, dtype=torch.long, device=scores.device)
    return keep, scores[keep]


def suppress_and_limit(detections: Detections, settings: DecoderSettings) -> Detections:
    """Step 5: per-class soft-NMS, score threshold, then the ``max_detections`` best (sorted by score)."""
    kept_index: list[torch.Tensor] = []
    kept_scores: list[torch.Tensor] = []
    for label in detections.labels.unique():
        members = torch.nonzero(detections.labels == label).flatten()
        keep, scores = soft_nms(
            detections.boxes[members],
            detections.scores[members],
            settings.soft_nms,
            settings.soft_nms_sigma,
            settings.soft_nms_iou,
            settings.score_threshold,
        )
        kept_index.append(members[keep])
        kept_scores.append(scores)
    if not kept_index:
        return detections
    index = torch.cat(kept_index)
    result = detections.select(index)
    result.scores = torch.cat(kept_scores)
    order = result.scores.argsort(descending=True)[: settings.max_detections]
    return result.select(order)


def _empty_detections(device: torch.device) -> Detections:
    return Detections(
        torch.zeros(0, 4, device=device),
        torch.zeros(0, device=device),
        torch.zeros(0, dtype=torch.long, device=device),
        torch.zeros(0, 2, device=device),
        torch.zeros(0, 2, device=device),
        torch.zeros(0, device=device),
    )


class CenterNetDecoder:
    """Runs a network on a batch (with flip and scales) and decodes every image (steps 1-5).

    Args:
        settings: The decoding numbers.
    """

    def __init__(self, settings: DecoderSettings = DecoderSettings()) -> None:
        self.settings = settings

    @torch.no_grad()
    def __call__(
        self,
        network: NetworkFn,
        images: torch.Tensor,
        resize_factors: torch.Tensor | Sequence[float] | None = None,
        original_sizes: torch.Tensor | Sequence[Sequence[int]] | None = None,
    ) -> list[Detections]:
        """Detections of a batch of (padded) images.

        Args:
            network: ``images -> outputs`` (the last stack's raw maps, see ``OUTPUT_NAMES``).
            images: ``(B, 3, H, W)`` normalised input tensor.
            resize_factors: ``(B,)`` input pixels per original-image pixel (1 when the image was not resized).
            original_sizes: ``(B, 2)`` ``(height, width)`` of the original images (boxes are clipped to them).
        """
        settings = self.settings
        batch, _, height, width = images.shape
        device = images.device
        factors = torch.as_tensor(
            resize_factors if resize_factors is not None else [1.0] * batch,
            dtype=torch.float32,
            device=device,
        ).reshape(batch)
        if original_sizes is None:
            sizes = (
                torch.tensor([[height, width]] * batch, dtype=torch.float32, device=device) / factors[:, None]
            )
        else:
            sizes = torch.as_tensor(original_sizes, dtype=torch.float32, device=device).reshape(batch, 2)
        boxes: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        scores: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        labels: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        corners: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        centers: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        center_scores: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        center_labels: list[list[torch.Tensor]] = [[] for _ in range(batch)]
        for scale in settings.scales:
            scaled = images
            if scale != 1.0:
                size = (max(int(round(height * scale)), 1), max(int(round(width * scale)), 1))
                scaled = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            inputs = torch.cat([scaled, scaled.flip(3)]) if settings.flip else scaled
            outputs = network(inputs)
            out_h, out_w = outputs["tl_heatmap"].shape[-2:]
            in_h, in_w = inputs.shape[-2:]
            # output grid -> scaled input pixels -> input pixels -> original pixels
            to_x = (in_w / out_w) / scale / factors
            to_y = (in_h / out_h) / scale / factors
            pairs = decode_corner_pairs(outputs, settings)
            points = decode_centers(outputs, settings) if scale == 1.0 else None
            for view in range(2 if settings.flip else 1):
                for b in range(batch):
                    row = view * batch + b
                    valid = pairs.scores[row] > -1
                    box = pairs.boxes[row][valid].clone()
                    if view == 1:  # mirror back: x -> W - x on the output grid (continuous coordinates)
                        box[:, [0, 2]] = out_w - box[:, [2, 0]]
                    box[:, [0, 2]] *= to_x[b]
                    box[:, [1, 3]] *= to_y[b]
                    boxes[b].append(box)
                    scores[b].append(pairs.scores[row][valid])
                    labels[b].append(pairs.labels[row][valid])
                    corners[b].append(pairs.corner_scores[row][valid])
                    if points is not None:
                        xy = points[0][row].clone()
                        if view == 1:
                            xy[:, 0] = out_w - xy[:, 0]
                        xy[:, 0] *= to_x[b]
                        xy[:, 1] *= to_y[b]
                        centers[b].append(xy)
                        center_scores[b].append(points[1][row])
                        center_labels[b].append(points[2][row])
        results = []
        for b in range(batch):
            if not boxes[b]:
                results.append(_empty_detections(device))
                continue
            box = torch.cat(boxes[b])
            box[:, [0, 2]] = box[:, [0, 2]].clamp(0, float(sizes[b, 1]))
            box[:, [1, 3]] = box[:, [1, 3]].clamp(0, float(sizes[b, 0]))
            candidates = Detections(
                box,
                torch.cat(scores[b]),
                torch.cat(labels[b]),
                torch.zeros(len(box), 2, device=device),
                torch.cat(corners[b]),
                torch.zeros(len(box), device=device),
            )
            checked = center_region_check(
                candidates,
                torch.cat(centers[b]),
                torch.cat(center_scores[b]),
                torch.cat(center_labels[b]),
                settings,
            )
            results.append(suppress_and_limit(checked, settings))
        return results
