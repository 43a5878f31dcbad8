"""The SAKE objective (arXiv:1904.03208 Sec. 3.3, Eq. (1)-(4)).

L = CE(benchmark logits, y) + lambda_SAKE * L_KD, where on photos only (official code)
L_KD = -(1/#photos) sum_photos sum_c t_c log softmax(z_student)_c with the semantic-aware teacher target
t = softmax(lambda_kd * z_teacher + lambda_sem * m_y); m_y is the row of the semantic mask of the photo's
benchmark class over the teacher's classes.
"""

from __future__ import annotations

import torch
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
