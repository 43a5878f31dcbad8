"""Decoding: max-pool NMS, pairing, central regions, center check, soft-NMS, limits and flip testing."""

from __future__ import annotations

import math

import pytest
import torch

from networks.detection.decoding import (
    CenterNetDecoder,
    DecoderSettings,
    Detections,
    center_region_check,
    central_regions,
    keypoint_nms,
    soft_nms,
    suppress_and_limit,
)

LOW, HIGH = -20.0, 20.0


def test_keypoint_nms_keeps_local_maxima_only() -> None:
    heat = torch.tensor([[0.1, 0.9, 0.2, 0.0], [0.3, 0.5, 0.0, 0.7], [0.0, 0.0, 0.0, 0.6]])[None, None]
    kept = keypoint_nms(heat)[0, 0]
    assert kept.nonzero().tolist() == [[0, 1], [1, 3]]


def test_central_regions_follow_the_150_pixel_rule() -> None:
    settings = DecoderSettings()
    small = torch.tensor([[0.0, 0.0, 150.0, 150.0]])  # area = 150^2: n = 3
    large = torch.tensor([[0.0, 0.0, 150.0, 151.0]])  # n = 5
    assert central_regions(small, settings).tolist() == [[50.0, 50.0, 100.0, 100.0]]
    region = central_regions(large, settings)[0].tolist()
    assert region == pytest.approx([60.0, 60.4, 90.0, 90.6])


def _candidates(boxes: list[list[float]], scores: list[float], labels: list[int]) -> Detections:
    n = len(boxes)
    return Detections(
        torch.tensor(boxes),
        torch.tensor(scores),
        torch.tensor(labels),
        torch.zeros(n, 2),
        torch.zeros(n, 2),
        torch.zeros(n),
    )


def test_center_check_keeps_boxes_with_a_same_class_center_and_rescores() -> None:
    candidates = _candidates([[0, 0, 30, 30], [0, 0, 30, 30], [40, 40, 70, 70]], [0.8, 0.6, 0.9], [0, 1, 0])
    centers = torch.tensor([[15.0, 15.0], [12.0, 12.0], [69.0, 69.0]])
    center_scores = torch.tensor([0.5, 0.9, 0.99])
    center_labels = torch.tensor([0, 0, 0])
    result = center_region_check(candidates, centers, center_scores, center_labels, DecoderSettings())
    # Box 0 (class 0): both centers (15, 15) and (12, 12) lie in its region (10, 10)-(20, 20): the best (0.9) wins.
    # Box 1 (class 1): no class-1 center. Box 2: (69, 69) is outside its region (50, 50)-(60, 60).
    assert result.boxes.tolist() == [[0, 0, 30, 30]]
    assert result.scores.item() == pytest.approx((2 * 0.8 + 0.9) / 3)
    assert result.centers.tolist() == [[12.0, 12.0]]


def test_gaussian_soft_nms_by_hand() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0]])
    keep, scores = soft_nms(boxes, torch.tensor([0.9, 0.8, 0.5]), "gaussian", sigma=0.5)
    assert keep.tolist() == [0, 2, 1]
    assert scores.tolist() == pytest.approx([0.9, 0.5, 0.8 * math.exp(-(0.5**2) / 0.5)])
    keep, _ = soft_nms(boxes, torch.tensor([0.9, 0.8, 0.5]), "hard", iou_threshold=0.4)
    assert keep.tolist() == [0, 2]


def test_suppression_is_per_class_and_limited() -> None:
    boxes = [[0, 0, 10, 10]] * 2 + [[float(i), 0.0, i + 5.0, 5.0] for i in range(20, 140, 10)]
    detections = _candidates(boxes, [0.9, 0.8] + [0.5] * 12, [0, 1] + [2] * 12)
    result = suppress_and_limit(detections, DecoderSettings(max_detections=5))
    assert len(result) == 5
    assert result.scores.tolist()[:2] == pytest.approx([0.9, 0.8])  # identical boxes of two classes both kept


def _outputs_for_box(
    height: int,
    width: int,
    box: tuple[int, int, int, int],
    label: int,
    num_classes: int = 2,
    flipped: bool = False,
) -> dict[str, torch.Tensor]:
    """Raw outputs of a 'network' that sees one box exactly (grid coordinates, integer corners)."""
    x1, y1, x2, y2 = box
    if flipped:
        x1, x2 = width - x2, width - x1
    outputs = {
        name: torch.full((1, num_classes, height, width), LOW)
        for name in ("tl_heatmap", "br_heatmap", "ct_heatmap")
    }
    outputs.update(
        {name: torch.full((1, 1, height, width), 100.0) for name in ("tl_embedding", "br_embedding")}
    )
    outputs.update(
        {name: torch.zeros(1, 2, height, width) for name in ("tl_offset", "br_offset", "ct_offset")}
    )
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    for name, (x, y) in (("tl", (x1, y1)), ("br", (x2, y2)), ("ct", (cx, cy))):
        ix, iy = min(int(x), width - 1), min(int(y), height - 1)
        outputs[f"{name}_heatmap"][0, label, iy, ix] = HIGH
        outputs[f"{name}_offset"][0, :, iy, ix] = torch.tensor([x - ix, y - iy])
        if name != "ct":
            outputs[f"{name}_embedding"][0, 0, iy, ix] = 0.0
    return outputs


@pytest.mark.parametrize("flip", [False, True])
def test_decoder_recovers_a_box_in_image_pixels(flip: bool) -> None:
    box = (3, 2, 11, 7)  # on the 16x16 output grid of a 64x64 input: (12, 8)-(44, 28) pixels

    def network(images: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = [_outputs_for_box(16, 16, box, label=1, flipped=index >= 1) for index in range(len(images))]
        return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}

    decoder = CenterNetDecoder(DecoderSettings(flip=flip))
    (detections,) = decoder(network, torch.zeros(1, 3, 64, 64))
    best = detections.scores.argmax()
    assert detections.boxes[best].tolist() == pytest.approx([12.0, 8.0, 44.0, 28.0], abs=1e-4)
    assert detections.labels[best].item() == 1
    assert detections.centers[best].tolist() == pytest.approx([28.0, 18.0], abs=1e-4)
    assert detections.scores[best].item() == pytest.approx(1.0, abs=1e-6)
    # resized input (factor 2: input pixels per original pixel) maps back to the original image
    (half,) = decoder(network, torch.zeros(1, 3, 64, 64), resize_factors=[2.0], original_sizes=[[32, 32]])
    assert half.boxes[half.scores.argmax()].tolist() == pytest.approx([6.0, 4.0, 22.0, 14.0], abs=1e-4)


def test_decoder_rejects_pairs_with_far_embeddings_or_other_classes() -> None:
    outputs = _outputs_for_box(16, 16, (3, 2, 11, 7), label=0)
    far = {k: v.clone() for k, v in outputs.items()}
    far["br_embedding"][0, 0, 7, 11] = 0.6
    decoder = CenterNetDecoder(DecoderSettings(flip=False))
    assert not (decoder(lambda images: far, torch.zeros(1, 3, 64, 64))[0].scores >= 0.01).any()
    other = {k: v.clone() for k, v in outputs.items()}
    other["br_heatmap"][0, 0, 7, 11] = LOW
    other["br_heatmap"][0, 1, 7, 11] = HIGH
    assert not (decoder(lambda images: other, torch.zeros(1, 3, 64, 64))[0].scores >= 0.01).any()
    assert (decoder(lambda images: outputs, torch.zeros(1, 3, 64, 64))[0].scores >= 0.99).sum() == 1


def test_multi_scale_needs_scale_one() -> None:
    with pytest.raises(ValueError, match="scale 1"):
        DecoderSettings(scales=(0.5, 1.5))


def test_multi_scale_adds_boxes_but_takes_centers_from_scale_one() -> None:
    box = (3, 2, 11, 7)  # grid coordinates of the 16x16 output at scale 1

    def network_factory(centers_at_scale_one: bool):
        def network(images: torch.Tensor) -> dict[str, torch.Tensor]:
            size = images.shape[-1] // 4
            factor = size / 16
            scaled_box = tuple(v * factor for v in box)
            outputs = _outputs_for_box(size, size, scaled_box, label=0)  # type: ignore[arg-type]
            if size == 16 and not centers_at_scale_one:
                outputs["ct_heatmap"].fill_(LOW)
            return outputs

        return network

    decoder = CenterNetDecoder(DecoderSettings(flip=False, scales=(0.5, 1.0)))
    (found,) = decoder(network_factory(True), torch.zeros(1, 3, 64, 64))
    assert found.boxes[found.scores.argmax()].tolist() == pytest.approx([12.0, 8.0, 44.0, 28.0], abs=1e-4)
    (missing,) = decoder(network_factory(False), torch.zeros(1, 3, 64, 64))
    assert not (missing.scores >= 0.01).any()  # the scale-0.5 centers do not validate boxes
