"""SAKE's learning-rate schedule (official training scripts of arXiv:1904.03208): exponential decay over the run."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def sake_schedule(optimizer: Optimizer, epochs: int, final_factor: float = 0.001) -> LambdaLR:
    """Epoch-wise ``lr_e = lr * final_factor ** (e / epochs)``: x 0.001 over the 20 epochs of the paper."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    return LambdaLR(optimizer, lambda epoch: final_factor ** (epoch / epochs))
