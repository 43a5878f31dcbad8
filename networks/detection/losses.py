"""Losses of CenterNet (arXiv:1904.08189, Sec. 3.5, Eq. 1), inherited from CornerNet (arXiv:1808.01244, Sec. 3).

``L = L_det^tl + L_det^br + L_det^ct + alpha L_pull + beta L_push + gamma (L_off^tl + L_off^br + L_off^ct)``
with alpha = beta = 0.1 and gamma = 1, averaged over the hourglass stacks (intermediate supervision).

* ``L_det``: the variant of focal loss of CornerNet Eq. 1 (``alpha = 2``, ``beta = 4``): with ``p`` the
  sigmoid of the heatmap clamped to ``[1e-4, 1 - 1e-4]`` and ``y`` the Gaussian target,
  ``-1/N sum[(1-p)^alpha log p  if y = 1  else  (1-y)^beta p^alpha log(1-p)]``, ``N`` the number of objects.
* ``L_pull = 1/N sum_k [(e_tl^k - e^k)^2 + (e_br^k - e^k)^2]`` with ``e^k`` the mean of the two embeddings;
  ``L_push = 1/(N(N-1)) sum_k sum_{j != k} max(0, 1 - |e^k - e^j|)`` (Eq. 2-3; margin 1), per image.
  They are averaged over the images of the batch (the official code sums them over each GPU's chunk of the
  batch, which makes their weight depend on the chunk size).
* ``L_off = 1/N sum_k SmoothL1(o^k - o_hat^k)`` over both offset coordinates (Eq. 2 of CornerNet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

PROBABILITY_CLAMP = 1e-4


def clamped_sigmoid(logits: torch.Tensor) -> torch.Tensor:
    """``sigmoid(logits)`` clamped to ``[1e-4, 1 - 1e-4]`` (the official code, so ``log`` stays finite)."""
    return torch.sigmoid(logits).clamp(PROBABILITY_CLAMP, 1.0 - PROBABILITY_CLAMP)


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss of CornerNet (Eq. 1), normalised by the number of positives.

    Args:
        logits: ``(B, C, H, W)`` heatmap logits.
        target: ``(B, C, H, W)`` Gaussian targets, exactly 1 at the objects' keypoints.
        alpha: Focusing exponent (2).
        beta: Exponent of the penalty reduction near a keypoint (4).
    """
    probability = clamped_sigmoid(logits.float())
    positive = target.eq(1)
    positive_loss = (torch.log(probability) * (1 - probability).pow(alpha))[positive].sum()
    negative_weight = (1 - target).pow(beta)
    negative_loss = (torch.log(1 - probability) * probability.pow(alpha) * negative_weight)[~positive].sum()
    num_positive = positive.sum()
    if num_positive == 0:
        return -negative_loss
    return -(positive_loss + negative_loss) / num_positive


def gather_at(feature_map: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Values of ``(B, D, H, W)`` maps at flat locations ``(B, M)``: ``(B, M, D)``."""
    batch, channels = feature_map.shape[:2]
    flat = feature_map.reshape(batch, channels, -1)
    return flat.gather(2, index.unsqueeze(1).expand(-1, channels, -1)).transpose(1, 2)


def pull_push_losses(
    tl_embedding: torch.Tensor, br_embedding: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pull (group the two corners of an object) and push (separate objects) embedding losses.

    Args:
        tl_embedding: ``(B, M)`` top-left embeddings at the objects' locations.
        br_embedding: ``(B, M)`` bottom-right embeddings.
        mask: ``(B, M)`` true on real objects.

    Returns:
        ``(pull, push)``, each averaged over the images of the batch (images without objects give 0; images
        with one object give no push term).
    """
    mask_f = mask.to(tl_embedding.dtype)
    count = mask_f.sum(dim=1)  # (B,)
    mean = (tl_embedding + br_embedding) / 2
    squared = ((tl_embedding - mean) ** 2 + (br_embedding - mean) ** 2) * mask_f
    pull = (squared.sum(dim=1) / count.clamp(min=1)).sum() / len(mask)
    pair_mask = (mask_f.unsqueeze(1) * mask_f.unsqueeze(2)) * (
        1 - torch.eye(mask.shape[1], device=mask.device)
    )
    margins = F.relu(1 - (mean.unsqueeze(1) - mean.unsqueeze(2)).abs()) * pair_mask
    pairs = (count * (count - 1)).clamp(min=1)
    push = (margins.sum(dim=(1, 2)) / pairs).sum() / len(mask)
    return pull, push


def offset_loss(
    offsets: torch.Tensor, index: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """SmoothL1 between predicted ``(B, 2, H, W)`` offsets at the objects and ``(B, M, 2)`` targets, / #objects."""
    predicted = gather_at(offsets, index)
    loss = F.smooth_l1_loss(predicted[mask], target[mask], reduction="sum")
    return loss / (mask.sum() + 1e-4)


@dataclass(frozen=True)
class LossWeights:
    """Weights of Eq. 1 of arXiv:1904.08189 (alpha, beta, gamma there) and the focal exponents."""

    pull: float = 0.1
    push: float = 0.1
    offset: float = 1.0
    focal_alpha: float = 2.0
    focal_beta: float = 4.0

    def __post_init__(self) -> None:
        for name in ("pull", "push", "offset", "focal_alpha", "focal_beta"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def centernet_loss(
    stack_outputs: Sequence[Mapping[str, torch.Tensor]],
    targets: Mapping[str, torch.Tensor],
    weights: LossWeights = LossWeights(),
) -> dict[str, torch.Tensor]:
    """Total loss and its parts, averaged over the stacks.

    Args:
        stack_outputs: One dict per stack with the raw maps of ``networks.detection.centernet.OUTPUT_NAMES``.
        targets: The batch from :func:`networks.detection.targets.collate_targets`.
        weights: Loss weights.

    Returns:
        ``{"loss", "focal_tl", "focal_br", "focal_ct", "pull", "push", "offset"}`` (each averaged over stacks;
        ``loss`` is the weighted total).
    """
    mask = targets["mask"]
    parts: dict[str, torch.Tensor] = {}
    for outputs in stack_outputs:
        stack: dict[str, torch.Tensor] = {}
        for kind in ("tl", "br", "ct"):
            stack[f"focal_{kind}"] = focal_loss(
                outputs[f"{kind}_heatmap"],
                targets[f"{kind}_heatmap"],
                weights.focal_alpha,
                weights.focal_beta,
            )
        tl_embedding = gather_at(outputs["tl_embedding"], targets["tl_index"]).squeeze(2)
        br_embedding = gather_at(outputs["br_embedding"], targets["br_index"]).squeeze(2)
        stack["pull"], stack["push"] = pull_push_losses(tl_embedding.float(), br_embedding.float(), mask)
        stack["offset"] = sum(
            offset_loss(
                outputs[f"{kind}_offset"].float(), targets[f"{kind}_index"], targets[f"{kind}_offset"], mask
            )
            for kind in ("tl", "br", "ct")
        )
        for name, value in stack.items():
            parts[name] = parts.get(name, 0) + value / len(stack_outputs)
    parts["loss"] = (
        parts["focal_tl"]
        + parts["focal_br"]
        + parts["focal_ct"]
        + weights.pull * parts["pull"]
        + weights.push * parts["push"]
        + weights.offset * parts["offset"]
    )
    return parts
