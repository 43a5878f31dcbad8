"""MCNL and batch-hard triplet losses on hand-made batches whose hardest pairs are known."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from networks.reid.losses import BatchHardTripletLoss, MCNLLoss, euclidean_distances, hardest_distances

# points on a line: a0, a1 (identity 0, camera 0), b (identity 1, camera 0), c (identity 2, camera 1)
POSITIONS = [0.0, 1.0, 1.5, 2.0]
IDENTITIES = torch.tensor([0, 0, 1, 2])
CAMERAS = torch.tensor([0, 0, 0, 1])


def features(requires_grad: bool = False) -> torch.Tensor:
    points = torch.tensor([[x, 0.0] for x in POSITIONS], dtype=torch.float64)
    return points.requires_grad_(requires_grad)


def test_hardest_distances_of_the_hand_made_batch() -> None:
    hardest = hardest_distances(euclidean_distances(features()), IDENTITIES, CAMERAS)
    inf = float("inf")
    torch.testing.assert_close(hardest["positive"], torch.tensor([1.0, 1.0, -inf, -inf], dtype=torch.float64))
    # d2: nearest other-identity sample from another camera; d3: from the same camera
    torch.testing.assert_close(hardest["other_camera_negative"], torch.tensor([2.0, 1.0, 0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(hardest["same_camera_negative"], torch.tensor([1.5, 0.5, 0.5, inf], dtype=torch.float64))


def test_mcnl_loss_value_by_hand() -> None:
    # first term (anchors a0, a1): max(0, .1 + 1 - 2), max(0, .1 + 1 - 1) -> mean 0.05
    # second term (anchors a0, a1, b): max(0, .1 + 2 - 1.5), max(0, .1 + 1 - .5), max(0, .1 + .5 - .5) -> 1.3 / 3
    loss = MCNLLoss(0.1, 0.1)(features(), IDENTITIES, CAMERAS)
    assert float(loss) == pytest.approx(0.05 + 1.3 / 3)


def test_mcnl_soft_margin_and_ordering() -> None:
    soft = MCNLLoss(None, None)(features(), IDENTITIES, CAMERAS)
    first = F.softplus(torch.tensor([1.0 - 2.0, 1.0 - 1.0])).mean()
    second = F.softplus(torch.tensor([2.0 - 1.5, 1.0 - 0.5, 0.5 - 0.5])).mean()
    assert float(soft) == pytest.approx(float(first + second))
    # a batch already ordered d1 < d2 < d3 with room for the margins has zero loss
    ordered = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 10.0], [0.0, 5.0], [0.0, 20.0], [0.0, 20.1]])
    identities, cameras = torch.tensor([0, 0, 1, 2, 3, 3]), torch.tensor([0, 0, 0, 1, 1, 1])
    assert float(MCNLLoss()(ordered, identities, cameras)) == 0.0


def test_mcnl_gradient_pushes_same_camera_negative_away() -> None:
    points = features(requires_grad=True)
    MCNLLoss()(points, IDENTITIES, CAMERAS).backward()
    assert torch.isfinite(points.grad).all()
    assert points.grad[2, 0] < 0  # b (x=1.5) moves right, away from a1 (x=1): gradient descent goes -grad


def test_batch_hard_triplet_value_by_hand() -> None:
    # anchors with a positive: a0 max(0, .3 + 1 - 1.5) = 0, a1 max(0, .3 + 1 - .5) = .8 -> mean .4
    assert float(BatchHardTripletLoss(0.3)(features(), IDENTITIES, CAMERAS)) == pytest.approx(0.4)
    soft = BatchHardTripletLoss(None)(features(), IDENTITIES)
    assert float(soft) == pytest.approx(float(F.softplus(torch.tensor([1 - 1.5, 1 - 0.5])).mean()))


def test_batch_without_any_valid_anchor_gives_zero_with_a_graph() -> None:
    points = torch.randn(3, 4, requires_grad=True)
    loss = MCNLLoss()(points, torch.tensor([0, 1, 2]), torch.tensor([0, 0, 0]))
    assert float(loss) == 0.0 and loss.requires_grad


def test_half_precision_features_give_finite_gradients() -> None:
    points = features().half().requires_grad_(True)
    loss = MCNLLoss()(points, IDENTITIES, CAMERAS) + BatchHardTripletLoss()(points, IDENTITIES)
    loss.backward()
    assert torch.isfinite(points.grad).all()


def test_an_anchor_without_a_same_camera_negative_leaves_the_second_term_only() -> None:
    # camera 0 holds identity 0 only (a0 at 0, a1 at 1): no same-camera negative for either; camera 1 holds
    # identity 1 (c0 at 3, c1 at 3.5) and identity 2 (e at 2, no positive)
    points = torch.tensor([[0.0], [1.0], [3.0], [3.5], [2.0]], dtype=torch.float64)
    identities, cameras = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 0, 1, 1, 1])
    hardest = hardest_distances(euclidean_distances(points), identities, cameras)
    assert torch.isinf(hardest["same_camera_negative"][:2]).all()
    torch.testing.assert_close(hardest["other_camera_negative"][:2], torch.tensor([2.0, 1.0], dtype=torch.float64))
    # first term, anchors with a positive (a0, a1, c0, c1): 0, max(0, .1 + 1 - 1) = .1, 0, 0 -> .1 / 4
    # second term, anchors with both negatives only (c0, c1, e): max(0, .1 + 2 - 1) = 1.1, .1 + 2.5 - 1.5 = 1.1,
    # .1 + 1 - 1 = .1 -> 2.3 / 3. a0 and a1 are left out of it (the official code would add .1 + 2 and .1 + 1 for
    # them with d3 = 0, and average the second term over all five anchors: 0.02 + 1.1 instead)
    loss = MCNLLoss(0.1, 0.1)(points, identities, cameras)
    assert float(loss) == pytest.approx(0.1 / 4 + 2.3 / 3)
    # a batch where no anchor has a same-camera negative and the first term is satisfied: zero loss and no pull
    # of the other camera's sample towards the anchors (the official d3 = 0 would give .1 + d2 per anchor)
    apart = torch.tensor([[0.0], [1.0], [5.0]], dtype=torch.float64, requires_grad=True)
    loss = MCNLLoss(0.1, 0.1)(apart, torch.tensor([0, 0, 1]), torch.tensor([0, 0, 1]))
    loss.backward()
    assert float(loss) == 0.0 and torch.count_nonzero(apart.grad) == 0
