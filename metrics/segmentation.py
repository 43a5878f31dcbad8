"""Dice (DSC) per class and per case, the metric of the thickened 2D paper (arXiv:1904.01150).

``Dice_c = 2 |P_c ∩ G_c| / (|P_c| + |G_c|)`` for each foreground class ``c`` of one case (the whole volume, on
the label file's grid). A class absent from both the prediction and the label of a case has no Dice there (NaN)
and is left out of that class's mean over cases; a class predicted but absent from the label scores 0
(torchmetrics' ``dice_score``; MONAI's ``DiceMetric(ignore_empty=True)`` would skip that case instead, hiding
false positives).
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.functional.segmentation import dice_score


def dice_per_class(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Dice of classes ``1 .. num_classes - 1`` between two label volumes of class indices (NaN: both empty):
    torchmetrics' ``dice_score``, whose empty-class convention is this one."""
    classes = torch.arange(num_classes, device=prediction.device).view(1, -1, 1)
    masks = [volume.reshape(1, 1, -1).long() == classes for volume in (prediction, target)]  # bool one-hot: lean
    scores = dice_score(*masks, num_classes=num_classes, include_background=False, average="none",
                        input_format="one-hot")
    return scores.reshape(-1).double()


class CaseDice(Metric):
    """Dice per foreground class of every case seen; ``compute`` returns the per-case table and the means.

    Its states are concatenated across processes (``dist_reduce_fx="cat"``), so every rank sees all cases.
    """

    full_state_update = False

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("case_indices", default=[], dist_reduce_fx="cat")

    def update(self, prediction: torch.Tensor, target: torch.Tensor, case_index: int) -> None:  # type: ignore[override]
        self.scores.append(dice_per_class(prediction, target, self.num_classes)[None])
        self.case_indices.append(torch.tensor([int(case_index)], device=self.device))

    def compute(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """``per_case`` (cases x foreground classes), ``case_index``, ``per_class`` (NaN-skipping mean), ``mean``."""
        scores = self.scores if isinstance(self.scores, torch.Tensor) else (
            torch.cat(self.scores) if self.scores else torch.empty(0, self.num_classes - 1, dtype=torch.float64))
        indices = self.case_indices if isinstance(self.case_indices, torch.Tensor) else (
            torch.cat(self.case_indices) if self.case_indices else torch.empty(0, dtype=torch.long))
        scores, indices = scores.reshape(-1, self.num_classes - 1), indices.reshape(-1)
        per_class = scores.nanmean(0) if len(scores) else torch.full((self.num_classes - 1,), float("nan"))
        present = per_class[~per_class.isnan()]
        mean = present.mean() if len(present) else torch.tensor(0.0, dtype=torch.float64)
        return {"per_case": scores, "case_index": indices, "per_class": per_class, "mean": mean}
