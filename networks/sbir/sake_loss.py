"""The SAKE objective (arXiv:1904.03208 Sec. 3.3, Eq. (1)-(4)).

L = CE(benchmark logits, y) + lambda_SAKE * L_KD, where on photos only (official code)
L_KD = -(1/#photos) sum_photos sum_c t_c log softmax(z_student)_c with the semantic-aware teacher target
t = softmax(lambda_kd * z_teacher + lambda_sem * m_y); m_y is the row of the semantic mask of the photo's
benchmark class over the teacher's classes. :class:`SakeLoss` holds the three weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def semantic_teacher_targets(teacher_logits: torch.Tensor, semantic_rows: torch.Tensor, lambda_kd: float,
                             lambda_sem: float) -> torch.Tensor:
    """softmax(lambda_kd * z_teacher + lambda_sem * m_y) (SAKE Eq. (3)), one row per photo."""
    return torch.softmax(lambda_kd * teacher_logits + lambda_sem * semantic_rows, dim=1)


def distillation_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student's teacher-class logits against soft targets, averaged over the rows."""
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0
    return -(targets * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()


def sake_loss(benchmark_logits: torch.Tensor, labels: torch.Tensor, student_teacher_logits: torch.Tensor,
              targets: torch.Tensor, sake_lambda: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, cross-entropy, distillation)``; ``student_teacher_logits`` and ``targets`` hold the photos only."""
    cross_entropy = F.cross_entropy(benchmark_logits, labels)
    distillation = distillation_loss(student_teacher_logits, targets)
    return cross_entropy + sake_lambda * distillation, cross_entropy, distillation


class SakeLoss(nn.Module):
    """SAKE's objective with its weights (Sec. 3.3; 1, 1 and 0.3 in the paper and the official scripts).

    ``forward(benchmark_logits, labels, student_photo_logits, targets)`` gives ``(total, cross-entropy,
    distillation)``; :meth:`targets` the semantic-aware teacher targets of the photos.

    Args:
        sake_lambda: lambda_SAKE, weight of the distillation term (0: the paper's "without SAKE" ablation).
        lambda_kd: weight of the teacher logits in the target.
        lambda_sem: weight of the semantic mask in the target.
    """

    def __init__(self, sake_lambda: float = 1.0, lambda_kd: float = 1.0, lambda_sem: float = 0.3) -> None:
        super().__init__()
        if sake_lambda < 0:
            raise ValueError(f"sake_lambda must be >= 0 (0 turns knowledge preservation off), got {sake_lambda}.")
        self.sake_lambda, self.lambda_kd, self.lambda_sem = float(sake_lambda), float(lambda_kd), float(lambda_sem)

    @property
    def distils(self) -> bool:
        """Whether the distillation term counts (``sake_lambda > 0``): otherwise the teacher need not run."""
        return self.sake_lambda > 0

    def targets(self, teacher_logits: torch.Tensor, semantic_rows: torch.Tensor) -> torch.Tensor:
        """softmax(lambda_kd * z_teacher + lambda_sem * m_y), one row per photo."""
        return semantic_teacher_targets(teacher_logits, semantic_rows, self.lambda_kd, self.lambda_sem)

    def forward(self, benchmark_logits: torch.Tensor, labels: torch.Tensor, student_photo_logits: torch.Tensor,
                targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return sake_loss(benchmark_logits, labels, student_photo_logits, targets, self.sake_lambda)
