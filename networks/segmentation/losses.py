"""Dice + cross-entropy loss of the segmentation networks (weights in the config).

Soft Dice (Milletari et al., arXiv:1606.04797) per foreground class, computed over the whole batch, averaged
over classes; cross-entropy per voxel. The thickened 2D paper measures Dice (DSC); its training loss is not yet
verified, so the two weights are arguments.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, include_background: bool = False,
                   smooth: float = 1e-5) -> torch.Tensor:
    """``1 - mean_c (2 sum(p_c g_c) + s) / (sum p_c + sum g_c + s)`` with ``p = softmax(logits)`` over the batch.

    Args:
        logits: ``(B, C, *spatial)``.
        target: ``(B, *spatial)`` class indices.
    """
    probabilities = logits.float().softmax(dim=1)
    one_hot = F.one_hot(target.long(), logits.shape[1]).movedim(-1, 1).to(probabilities.dtype)
    dims = [0, *range(2, logits.dim())]
    intersection = (probabilities * one_hot).sum(dims)
    denominator = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (denominator + smooth)
    if not include_background:
        dice = dice[1:]
    return 1.0 - dice.mean()


class DiceCrossEntropyLoss(nn.Module):
    """``dice_weight * soft Dice loss + ce_weight * cross-entropy``."""

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0, include_background: bool = False) -> None:
        super().__init__()
        if dice_weight < 0 or ce_weight < 0 or dice_weight + ce_weight == 0:
            raise ValueError(f"dice_weight and ce_weight must be >= 0 and not both 0, got {dice_weight} and {ce_weight}")
        self.dice_weight, self.ce_weight, self.include_background = dice_weight, ce_weight, include_background

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        dice = soft_dice_loss(logits, target, self.include_background)
        cross_entropy = F.cross_entropy(logits.float(), target.long())
        return {"loss": self.dice_weight * dice + self.ce_weight * cross_entropy, "dice_loss": dice.detach(),
                "ce_loss": cross_entropy.detach()}
