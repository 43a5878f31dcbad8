"""The defender of "Defending Adversarial Attacks by Correcting Logits" (Li, Xie et al., arXiv:1906.10973).

The defender is a two-layer perceptron on the classifier's logits (Sec. 3 of the paper; layer sizes and the
initialisation as in the authors' code): ``Linear(C -> 2048) -> ReLU -> Dropout(0.5) -> Linear(2048 -> C)``,
weights drawn with Kaiming-normal initialisation. It sees only logits, never images.

:class:`DefenderBank` holds one defender per attack so that all defenders of a transfer matrix (trained on
attack A, evaluated on attack B) train in one pass; defenders share nothing, so training them together is
the same as training each alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Hidden width of the defender in the authors' code.
DEFENDER_HIDDEN = 2048
#: Dropout probability between the two layers in the authors' code.
DEFENDER_DROPOUT = 0.5


class LogitDefender(nn.Module):
    """Maps the logits of an (attacked) image to corrected logits of the same ``num_classes``.

    Args:
        num_classes: Number of logits in and out (C).
        hidden: Width of the hidden layer (2048 in the paper's code).
        dropout: Dropout probability after the ReLU (0.5 in the paper's code).
    """

    def __init__(self, num_classes: int, hidden: int = DEFENDER_HIDDEN, dropout: float = DEFENDER_DROPOUT) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2 (the classifier's logits), got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.layers = nn.Sequential(
            nn.Linear(num_classes, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for layer in self.layers:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` logits -> ``(N, C)`` corrected logits."""
        return self.layers(logits)


class DefenderBank(nn.Module):
    """One :class:`LogitDefender` per attack name (the rows of the transfer matrix).

    Args:
        attack_names: The attacks a defender is trained on, in a fixed order.
        num_classes, hidden, dropout: see :class:`LogitDefender`.
    """

    def __init__(self, attack_names: Sequence[str], num_classes: int, hidden: int = DEFENDER_HIDDEN,
                 dropout: float = DEFENDER_DROPOUT) -> None:
        super().__init__()
        if not attack_names or isinstance(attack_names, str):
            raise ValueError(f"attack_names must list at least one attack (those of the logit dataset the defenders "
                             f"learn from), got {attack_names!r}")
        self.attack_names = [str(name) for name in attack_names]
        self.defenders = nn.ModuleDict({name: LogitDefender(num_classes, hidden, dropout) for name in self.attack_names})
        self.num_classes, self.hidden, self.dropout = int(num_classes), int(hidden), float(dropout)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` logits -> ``(K, N, C)``: every defender's correction of the same logits."""
        return torch.stack([self.defenders[name](logits) for name in self.attack_names])

    def forward_each(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(K, N, C)`` (one input batch per defender, in ``attack_names`` order) -> ``(K, N, C)``."""
        if inputs.shape[0] != len(self.attack_names):
            raise ValueError(f"expected {len(self.attack_names)} input batches, got {inputs.shape[0]}")
        return torch.stack([self.defenders[name](batch) for name, batch in zip(self.attack_names, inputs, strict=True)])

    def __getitem__(self, name: str) -> LogitDefender:
        return self.defenders[name]  # type: ignore[return-value]
