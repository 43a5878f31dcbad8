"""Shared pieces of the suite's image classifiers: metrics and the non-finite-loss guard."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from visionsuite.errors import TrainingDivergedError


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Top-1 (and top-5 when there are more than 5 classes) accuracy, micro-averaged as the papers report."""
    metrics: dict[str, nn.Module] = {"acc1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes > 5:
        metrics["acc5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


def ensure_finite(loss: torch.Tensor, where: str, epoch: int, step: int) -> None:
    """Stop training with a clear message when ``loss`` is NaN or infinite.

    The exception propagates out of ``trainer.fit``; no checkpoint is written for the failing epoch, so
    ``checkpoints/last.ckpt`` stays the last good one.
    """
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"The {where} became {value} at epoch {epoch}, step {step}. Training stopped; the last good "
            "checkpoint is checkpoints/last.ckpt in the run directory. Lower the learning rate "
            "(model.optimizer.lr) or keep gradient clipping on (trainer.gradient_clip_val), then resume with "
            "ckpt_path=<that file>."
        )
