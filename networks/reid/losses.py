"""Metric-learning losses of single-camera-training re-ID, on unnormalised Euclidean distances.

* :class:`MCNLLoss`: the Multi-Camera Negative Loss of MCNL (arXiv:1909.10848, Sec. 3.2, Eq. 3-5), which
  asks every anchor for ``d1 < d2 < d3``: the hardest positive (same identity, hence same camera under SCT)
  closer than the nearest other-identity sample from another camera, itself closer than the nearest
  other-identity sample from the anchor's own camera.
* :class:`BatchHardTripletLoss`: the batch-hard triplet loss (Hermans et al., arXiv:1703.07737), MCNL's
  baseline (margin 0.3).

Both take a batch of features with their identity and camera labels; no identity (softmax) loss is used.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

INFINITY = float("inf")


def euclidean_distances(features: torch.Tensor) -> torch.Tensor:
    """``(B, B)`` Euclidean distances between the rows of ``features`` (clamped away from 0 for the sqrt).

    Always computed in float32 or wider, outside autocast: in float16 the clamp's 1e-12 rounds to 0 and the
    square root's gradient at the (masked) diagonal would turn into NaN.
    """
    with torch.autocast(device_type=features.device.type, enabled=False):
        features = features.float() if features.dtype in (torch.float16, torch.bfloat16) else features
        squared = features.pow(2).sum(dim=1)
        gram = features @ features.t()
        return (squared[:, None] + squared[None, :] - 2 * gram).clamp(min=1e-12).sqrt()


def _ranking_term(closer: torch.Tensor, farther: torch.Tensor, margin: float | None,
                  valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid anchors of ``max(0, margin + closer - farther)``, or the soft margin ``log(1 + e^x)``."""
    if not bool(valid.any()):
        # zero that keeps the graph (and DDP's used-parameter bookkeeping) intact; inf entries masked first
        return torch.where(torch.isfinite(closer), closer, torch.zeros_like(closer)).sum() * 0.0
    gap = closer[valid] - farther[valid]
    return F.softplus(gap).mean() if margin is None else F.relu(margin + gap).mean()


def hardest_distances(
    distances: torch.Tensor, identities: torch.Tensor, cameras: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-anchor hardest distances of MCNL (arXiv:1909.10848 Eq. 3-4).

    Returns ``{"positive": d1, "other_camera_negative": d2, "same_camera_negative": d3}``: d1 the largest
    distance to another sample of the anchor's identity (``-inf`` if none), d2 the smallest distance to an
    other-identity sample from another camera and d3 to one from the anchor's camera (``+inf`` if none).
    """
    same_identity = identities[:, None] == identities[None, :]
    same_camera = cameras[:, None] == cameras[None, :]
    not_self = ~torch.eye(len(identities), dtype=torch.bool, device=distances.device)
    positive = distances.masked_fill(~(same_identity & not_self), -INFINITY).amax(dim=1)
    other_camera = distances.masked_fill(same_identity | same_camera, INFINITY).amin(dim=1)
    same_camera_negative = distances.masked_fill(same_identity | ~same_camera, INFINITY).amin(dim=1)
    return {"positive": positive, "other_camera_negative": other_camera, "same_camera_negative": same_camera_negative}


class MCNLLoss(nn.Module):
    """Multi-Camera Negative Loss (arXiv:1909.10848, Sec. 3.2; official code: ``DistanceLoss`` in utils/loss.py).

    ``L = mean_a max(0, m1 + d1 - d2) + mean_a max(0, m2 + d2 - d3)`` with d1, d2, d3 from
    :func:`hardest_distances`; with ``margins=None`` each term is the soft margin ``log(1 + exp(x))``.

    Anchors without the samples a term needs: an anchor takes part in a term only when the batch holds them (a
    positive and an other-camera negative for the first, both kinds of negative for the second); each mean is
    over the anchors that take part. The paper (Sec. 3) defines d2 and d3 as the distances to the nearest
    negative from another camera and from the anchor's camera, so a term without such a negative is undefined,
    not zero: leaving the anchor out of that term is the definition applied to the negatives that exist. The
    official code (utils/loss.py ``distance_mining`` and ``DistanceLoss``) differs there: it starts d2 and d3 at
    0, keeps 0 where the negative is missing and averages over every anchor, so an anchor with no same-camera
    negative adds ``max(0, m2 + d2)`` and its gradient pulls the nearest other-camera negative *closer*; its d1
    also counts the anchor itself (distance ~0) when there is no other positive. The camera-aware batches of the
    paper experiments (5 identities from each camera on Market, 4 on Duke, 8 images each) always hold every kind
    of sample, so the two rules agree there; they differ for other batch layouts (a P x K batch, a camera that
    gives a batch one identity only).

    Args:
        first_margin: m1 (0.1 in the official scripts); ``None`` for the soft margin.
        second_margin: m2 (0.1 in the official scripts); ``None`` for the soft margin.
    """

    def __init__(self, first_margin: float | None = 0.1, second_margin: float | None = 0.1) -> None:
        super().__init__()
        self.first_margin = first_margin
        self.second_margin = second_margin

    def forward(self, features: torch.Tensor, identities: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
        hardest = hardest_distances(euclidean_distances(features), identities, cameras)
        d1, d2, d3 = hardest["positive"], hardest["other_camera_negative"], hardest["same_camera_negative"]
        has_positive, has_other, has_same = torch.isfinite(d1), torch.isfinite(d2), torch.isfinite(d3)
        first = _ranking_term(d1, d2, self.first_margin, has_positive & has_other)
        second = _ranking_term(d2, d3, self.second_margin, has_other & has_same)
        return first + second


class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss (arXiv:1703.07737, Eq. 5), MCNL's baseline with margin 0.3 (arXiv:1909.10848 Tab. 3).

    ``L = mean_a max(0, m + max_p d(a, p) - min_n d(a, n))`` over anchors with a positive and a negative;
    ``margin=None`` gives the soft-margin form. Cameras are ignored (accepted so both losses share a call).
    """

    def __init__(self, margin: float | None = 0.3) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, features: torch.Tensor, identities: torch.Tensor,
                cameras: torch.Tensor | None = None) -> torch.Tensor:
        distances = euclidean_distances(features)
        same_identity = identities[:, None] == identities[None, :]
        not_self = ~torch.eye(len(identities), dtype=torch.bool, device=distances.device)
        positive = distances.masked_fill(~(same_identity & not_self), -INFINITY).amax(dim=1)
        negative = distances.masked_fill(same_identity, INFINITY).amin(dim=1)
        return _ranking_term(positive, negative, self.margin, torch.isfinite(positive) & torch.isfinite(negative))


__all__ = ["BatchHardTripletLoss", "MCNLLoss", "euclidean_distances", "hardest_distances"]
