"""Focal, pull/push and offset losses on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch

from networks.detection.losses import (
    LossWeights,
    centernet_loss,
    focal_loss,
    gather_at,
    offset_loss,
    pull_push_losses,
)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_focal_loss_by_hand() -> None:
    # One positive (y = 1, p = 0.8), one near it (y = 0.5, p = 0.3), one far (y = 0, p = 0.1).
    logits = torch.tensor([_logit(0.8), _logit(0.3), _logit(0.1)]).reshape(1, 1, 1, 3)
    target = torch.tensor([1.0, 0.5, 0.0]).reshape(1, 1, 1, 3)
    expected = (
        -(
            (1 - 0.8) ** 2 * math.log(0.8)
            + (1 - 0.5) ** 4 * 0.3**2 * math.log(1 - 0.3)
            + 1.0 * 0.1**2 * math.log(1 - 0.1)
        )
        / 1
    )
    assert focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-5)


def test_focal_loss_normalises_by_positives_and_handles_none() -> None:
    target = torch.zeros(1, 1, 2, 2)
    target[0, 0, 0, 0] = target[0, 0, 1, 1] = 1
    logits = torch.full((1, 1, 2, 2), _logit(0.5))
    per_positive = (0.5**2) * -math.log(0.5)
    negatives = 2 * (0.5**2) * -math.log(0.5)
    assert focal_loss(logits, target).item() == pytest.approx((2 * per_positive + negatives) / 2, rel=1e-5)
    empty = torch.zeros(1, 1, 2, 2)
    assert focal_loss(logits, empty).item() == pytest.approx(4 * 0.25 * math.log(2), rel=1e-5)


def test_focal_loss_clamps_probabilities() -> None:
    target = torch.zeros(1, 1, 1, 2)
    target[..., 0] = 1
    loss = focal_loss(torch.tensor([-100.0, 100.0]).reshape(1, 1, 1, 2), target)
    assert math.isfinite(loss.item())


def test_pull_and_push_by_hand() -> None:
    # Image 0: objects with (tl, br) = (0, 1) and (3, 3): means 0.5 and 3 (far apart: no push).
    # Image 1: (0, 0) and (0.2, 0.2): pull 0, push = (2 * (1 - 0.2)) / (2 * 1).
    tl = torch.tensor([[0.0, 3.0], [0.0, 0.2]])
    br = torch.tensor([[1.0, 3.0], [0.0, 0.2]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    pull, push = pull_push_losses(tl, br, mask)
    assert pull.item() == pytest.approx(((0.25 + 0.25 + 0) / 2 + 0) / 2)
    assert push.item() == pytest.approx((0 + 0.8) / 2)


def test_pull_push_ignore_padding_and_single_objects() -> None:
    tl = torch.tensor([[0.0, 100.0]])
    br = torch.tensor([[2.0, -100.0]])
    pull, push = pull_push_losses(tl, br, torch.tensor([[True, False]]))
    assert pull.item() == pytest.approx(2.0) and push.item() == 0


def test_offset_loss_is_smooth_l1_over_objects() -> None:
    offsets = torch.zeros(1, 2, 2, 2)
    offsets[0, :, 0, 1] = torch.tensor([0.5, 0.25])  # at flat index 1
    target = torch.tensor([[[0.0, 0.0], [9.0, 9.0]]])
    index = torch.tensor([[1, 0]])
    mask = torch.tensor([[True, False]])
    expected = 0.5 * 0.5**2 + 0.5 * 0.25**2
    assert offset_loss(offsets, index, target, mask).item() == pytest.approx(expected, rel=1e-3)
    assert gather_at(offsets, index)[0, 0].tolist() == [0.5, 0.25]


def test_total_is_the_weighted_sum_averaged_over_stacks() -> None:
    torch.manual_seed(0)
    targets = {
        "tl_heatmap": torch.zeros(1, 2, 4, 4),
        "br_heatmap": torch.zeros(1, 2, 4, 4),
        "ct_heatmap": torch.zeros(1, 2, 4, 4),
        "tl_index": torch.tensor([[0, 5]]),
        "br_index": torch.tensor([[10, 15]]),
        "ct_index": torch.tensor([[5, 10]]),
        "tl_offset": torch.rand(1, 2, 2),
        "br_offset": torch.rand(1, 2, 2),
        "ct_offset": torch.rand(1, 2, 2),
        "mask": torch.tensor([[True, True]]),
    }
    for name in ("tl", "br", "ct"):
        targets[f"{name}_heatmap"].view(1, 2, -1)[0, 0, targets[f"{name}_index"][0]] = 1

    def stack() -> dict[str, torch.Tensor]:
        return {
            "tl_heatmap": torch.randn(1, 2, 4, 4),
            "br_heatmap": torch.randn(1, 2, 4, 4),
            "ct_heatmap": torch.randn(1, 2, 4, 4),
            "tl_embedding": torch.randn(1, 1, 4, 4),
            "br_embedding": torch.randn(1, 1, 4, 4),
            "tl_offset": torch.randn(1, 2, 4, 4),
            "br_offset": torch.randn(1, 2, 4, 4),
            "ct_offset": torch.randn(1, 2, 4, 4),
        }

    stacks = [stack(), stack()]
    weights = LossWeights(pull=0.1, push=0.1, offset=1.0)
    parts = centernet_loss(stacks, targets, weights)
    singles = [centernet_loss([s], targets, weights) for s in stacks]
    for name in ("focal_tl", "pull", "push", "offset", "loss"):
        assert parts[name].item() == pytest.approx((singles[0][name] + singles[1][name]).item() / 2, rel=1e-5)
    total = (
        parts["focal_tl"]
        + parts["focal_br"]
        + parts["focal_ct"]
        + 0.1 * parts["pull"]
        + 0.1 * parts["push"]
        + parts["offset"]
    )
    assert parts["loss"].item() == pytest.approx(total.item(), rel=1e-6)
