"""MCNL's learning-rate schedule (official code of arXiv:1909.10848): constant, then exponential decay."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def constant_then_exponential_decay(optimizer: Optimizer, constant_epochs: int = 100, decay_span: int = 101,
                                    final_factor: float = 0.001) -> LambdaLR:
    """Epoch-wise factor 1 until ``constant_epochs``, then ``final_factor ** ((epoch + 1 - constant_epochs) / decay_span)``.

    With the official values (100, 101, 0.001) Adam's 2e-4 stays until epoch 100 and decays to about 2e-7
    at epoch 200 (official training script of arXiv:1909.10848).
    """
    if constant_epochs < 0 or decay_span <= 0 or not 0 < final_factor <= 1:
        raise ValueError(f"constant_epochs must be >= 0, decay_span > 0 and 0 < final_factor <= 1; got "
                         f"{constant_epochs}, {decay_span} and {final_factor}.")

    def factor(epoch: int) -> float:
        if epoch < constant_epochs:
            return 1.0
        return final_factor ** ((epoch + 1 - constant_epochs) / decay_span)

    return LambdaLR(optimizer, factor)
