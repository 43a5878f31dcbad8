"""Metrics of the logit defense (arXiv:1906.10973): accuracy with and without defenders, per logit source.

One :class:`DefenseAccuracy` metric counts correct predictions for every (model, logit source) pair:

* rows: ``undefended`` (the classifier alone: argmax of its logits) and one row per defender (the classifier
  followed by the defender trained on that attack);
* columns: ``clean`` and every attack of the logit dataset.

The defender rows restricted to the attack columns are the transfer matrix (trained on A, evaluated on B)
the paper discusses in Sec. 4. :class:`AdaptiveAccuracy` counts the accuracy of classifier + defender under
a white-box attack through both (the check a defense needs before anyone calls it robust).
:func:`transfer_matrix` reads the transfer matrix out of the evaluate phase's table. The attack phase counts the
classifier's accuracy on the logits it records with a :class:`DefenseAccuracy` without defenders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import Metric

UNDEFENDED = "undefended"
CLEAN = "clean"


class DefenseAccuracy(Metric):
    """Accuracy of each row model on each logit source (see the module docstring).

    Args:
        defender_names: The defenders (rows after ``undefended``), named by the attack each was trained on.
        source_names: The attacks of the logit dataset (columns after ``clean``).
    """

    full_state_update = False

    def __init__(self, defender_names: Sequence[str], source_names: Sequence[str]) -> None:
        super().__init__()
        self.rows = [UNDEFENDED, *defender_names]
        self.columns = [CLEAN, *source_names]
        self.add_state("correct", torch.zeros(len(self.rows), len(self.columns), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """``logits`` ``(rows, columns, N, C)`` as the row models give them on each source; ``labels`` ``(N,)``."""
        if logits.shape[:2] != (len(self.rows), len(self.columns)):
            raise ValueError(f"expected logits of shape ({len(self.rows)}, {len(self.columns)}, N, C), got "
                             f"{tuple(logits.shape)}")
        self.correct += (logits.argmax(-1) == labels).sum(-1)
        self.total += labels.numel()

    def compute(self) -> torch.Tensor:
        """``(rows, columns)`` accuracies in [0, 1]."""
        return self.correct.float() / self.total.clamp(min=1)

    def as_table(self) -> dict[str, dict[str, float]]:
        """``{row: {column: accuracy}}`` as plain floats."""
        matrix = self.compute().tolist()
        return {row: dict(zip(self.columns, values, strict=True)) for row, values in zip(self.rows, matrix, strict=True)}


class AdaptiveAccuracy(Metric):
    """Accuracy of classifier + each defender under an attack through both (one count per defender)."""

    full_state_update = False

    def __init__(self, defender_names: Sequence[str]) -> None:
        super().__init__()
        self.names = list(defender_names)
        self.add_state("correct", torch.zeros(len(self.names), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        """``predictions`` ``(K, N)`` class indices, one row per defender; ``labels`` ``(N,)``."""
        self.correct += (predictions == labels).sum(-1)
        self.total += labels.numel()

    def compute(self) -> torch.Tensor:
        return self.correct.float() / self.total.clamp(min=1)


def transfer_matrix(evaluation: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{trained_on: {evaluated_on: accuracy}}``: the defender rows of the evaluate phase's accuracy table
    (``evaluation["accuracy"]``, ``{row: {source: accuracy}}``) on the attack columns."""
    attacks = [source for source in evaluation["sources"] if source != CLEAN]
    return {defender: {attack: evaluation["accuracy"][defender][attack] for attack in attacks}
            for defender in evaluation["defenders"]}


__all__ = ["CLEAN", "UNDEFENDED", "AdaptiveAccuracy", "DefenseAccuracy", "transfer_matrix"]
