"""Targets: Gaussian radius (official and exact formulas), Gaussians, offsets and batching on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch

from networks.detection.targets import build_targets, collate_targets, draw_gaussian, gaussian_radius


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize(("height", "width"), [(10.0, 10.0), (12.0, 40.0), (30.0, 7.0)])
def test_exact_radius_keeps_the_overlap_in_the_worst_cases(height: float, width: float) -> None:
    t = 0.7
    r = gaussian_radius(height, width, t, formula="exact")
    box = (0.0, 0.0, width, height)
    worst = [
        _iou(box, (r, r, width + r, height + r)),  # both corners moved the same way
        _iou(box, (r, r, width - r, height - r)),  # both inwards
        _iou(box, (-r, -r, width + r, height + r)),  # both outwards
    ]
    assert min(worst) == pytest.approx(t, abs=1e-9)
    assert all(value >= t - 1e-9 for value in worst)


def test_official_radius_reproduces_the_code_formula_by_hand() -> None:
    # h = w = 10, t = 0.7: the official code takes (b + sqrt(b^2 - 4ac)) / 2 of each quadratic.
    h = w = 10.0
    t = 0.7
    r1 = (20 + math.sqrt(20**2 - 4 * 100 * 0.3 / 1.7)) / 2
    r2 = (40 + math.sqrt(40**2 - 16 * 0.3 * 100)) / 2
    r3 = (-2 * t * 20 + math.sqrt((2 * t * 20) ** 2 - 16 * t * (t - 1) * 100)) / 2
    assert gaussian_radius(h, w, t, formula="official") == pytest.approx(min(r1, r2, r3))
    assert gaussian_radius(h, w, t, formula="official") > gaussian_radius(h, w, t, formula="exact")


def test_gaussian_peak_sigma_and_border_clipping() -> None:
    heatmap = torch.zeros(9, 9)
    draw_gaussian(heatmap, 4, 4, radius=3, sigma_divisor=6)
    sigma = 7 / 6
    assert heatmap[4, 4] == 1
    assert heatmap[4, 5].item() == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-6)
    assert heatmap[0, 4] == 0 and heatmap[1, 4] > 0  # radius 3: nothing beyond
    border = torch.zeros(5, 5)
    draw_gaussian(border, 0, 4, radius=2, sigma_divisor=6)  # clipped at the corner, no error
    assert border[4, 0] == 1 and border[2, 0] > 0
    draw_gaussian(border, 0, 4, radius=2, sigma_divisor=6)  # max, not sum
    assert border.max() == 1


def test_targets_of_a_hand_made_box() -> None:
    # Input 64x64, output 16x16 (ratio 1/4); box (10, 6)-(42, 30): tl (2.5, 1.5), br (10.5, 7.5), ct (6.5, 4.5).
    boxes = torch.tensor([[10.0, 6.0, 42.0, 30.0]])
    t = build_targets(boxes, torch.tensor([2]), num_classes=3, output_size=(16, 16), input_size=(64, 64))
    assert (
        t.tl_index.tolist() == [1 * 16 + 2]
        and t.br_index.tolist() == [7 * 16 + 10]
        and t.ct_index.tolist() == [4 * 16 + 6]
    )
    for offset in (t.tl_offset, t.br_offset, t.ct_offset):
        assert offset.tolist() == [[0.5, 0.5]]
    assert t.tl_heatmap[2, 1, 2] == 1 and t.br_heatmap[2, 7, 10] == 1 and t.ct_heatmap[2, 4, 6] == 1
    assert t.tl_heatmap[:2].sum() == 0  # other classes untouched
    radius = int(gaussian_radius(6, 8, 0.7))
    # Centers use sigma = diameter / 5, corners diameter / 6: the center Gaussian is wider.
    if radius >= 1:
        assert t.ct_heatmap[2, 4, 7] > t.tl_heatmap[2, 1, 3]


def test_keypoints_on_the_far_border_are_clamped_inside() -> None:
    boxes = torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    t = build_targets(boxes, torch.tensor([0]), 1, (16, 16), (64, 64))
    assert t.br_index.tolist() == [15 * 16 + 15]
    assert t.br_offset.tolist() == [[1.0, 1.0]]


def test_collate_pads_objects_and_masks_them() -> None:
    one = build_targets(torch.tensor([[0.0, 0.0, 8.0, 8.0]]), torch.tensor([0]), 2, (8, 8), (32, 32))
    three = build_targets(
        torch.tensor([[0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 20.0, 20.0], [1.0, 2.0, 30.0, 31.0]]),
        torch.tensor([0, 1, 1]),
        2,
        (8, 8),
        (32, 32),
    )
    none = build_targets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 2, (8, 8), (32, 32))
    batch = collate_targets([one, three, none])
    assert batch["tl_heatmap"].shape == (3, 2, 8, 8)
    assert batch["tl_index"].shape == (3, 3) and batch["ct_offset"].shape == (3, 3, 2)
    assert batch["mask"].tolist() == [[True, False, False], [True, True, True], [False, False, False]]
