"""Learning-rate schedules of Pruning from Scratch's retraining (arXiv:1909.12579; official train_pruned*.py).

CIFAR: x0.1 at 50% and 75% of the epochs; ImageNet MobileNets: cosine; ImageNet ResNet-50: x0.1 at 30/60/90%.
Milestones are fractions of the run, so Scratch-B's longer budget moves them with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR


def retrain_schedule(optimizer: Optimizer, max_epochs: int, kind: Literal["step", "cosine"] = "step",
                     step_fractions: Sequence[float] = (0.5, 0.75), gamma: float = 0.1) -> LRScheduler:
    """A per-epoch schedule over ``max_epochs``: steps at ``int(max_epochs * f)`` or cosine to zero."""
    if kind == "cosine":
        return CosineAnnealingLR(optimizer, T_max=max(int(max_epochs), 1))
    if kind == "step":
        return MultiStepLR(optimizer, milestones=[int(int(max_epochs) * float(f)) for f in step_fractions],
                           gamma=gamma)
    raise ValueError(f"kind={kind!r}: use step or cosine.")


__all__ = ["retrain_schedule"]
