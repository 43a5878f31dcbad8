"""Learning-rate schedules of the papers that torch does not ship as one class."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear_decay_with_warmup(optimizer: Optimizer, max_epochs: int, warmup_epochs: int = 0) -> LambdaLR:
    """Epoch-wise linear warm-up to the base rate, then linear decay to zero.

    The ImageNet schedule of PC-DARTS (arXiv:1907.05737, Sec. 4.3: 5 warm-up epochs, then linear decay)
    and, with ``warmup_epochs=0``, of P-DARTS (arXiv:1904.12760, Sec. 4.4).
    """
    if max_epochs <= 0 or not 0 <= warmup_epochs < max_epochs:
        raise ValueError(f"need 0 <= warmup_epochs < max_epochs; got warmup={warmup_epochs}, max={max_epochs}")

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        return max(0.0, 1.0 - (epoch - warmup_epochs) / (max_epochs - warmup_epochs))

    return LambdaLR(optimizer, factor)
