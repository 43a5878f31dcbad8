"""Classification metrics of the suite's image classifiers (the NAS modules, ``ImageClassifier``, Pruning from
Scratch): top-1 / top-5 accuracy, the logging of a classifier's steps with them, and a plain evaluation loop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

if TYPE_CHECKING:  # the logging helpers take any LightningModule; this package does not import Lightning
    import pytorch_lightning as pl


def accuracy_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """Top-1 (and top-5 when there are more than 5 classes) accuracy, micro-averaged as the papers report."""
    metrics: dict[str, nn.Module] = {"acc1": MulticlassAccuracy(num_classes, top_k=1, average="micro")}
    if num_classes > 5:
        metrics["acc5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics, prefix=prefix)


def log_training_step(module: pl.LightningModule, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                      metrics: MetricCollection) -> None:
    """Update the training accuracy and log ``train/loss`` (step and epoch) and the accuracy (epoch)."""
    metrics.update(logits.detach(), targets)
    module.log("train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=len(targets))
    module.log_dict(metrics, on_step=False, on_epoch=True)


def log_evaluation_step(module: pl.LightningModule, stage: str, logits: torch.Tensor, targets: torch.Tensor,
                        metrics: MetricCollection) -> None:
    """Update ``metrics`` and log ``<stage>/loss`` (cross-entropy) and the accuracy of an evaluation batch."""
    metrics.update(logits, targets)
    module.log(f"{stage}/loss", F.cross_entropy(logits, targets), prog_bar=stage == "val", batch_size=len(targets),
               sync_dist=True)
    module.log_dict(metrics, prog_bar=stage == "val")


@torch.no_grad()
def evaluate_classifier(network: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]], num_classes: int,
                        prefix: str = "test/") -> dict[str, float]:
    """``<prefix>loss`` and the accuracies of ``network`` (in eval mode) over ``batches`` of ``(images, targets)``.

    What a classifier's evaluation loop logs (:func:`log_evaluation_step`), without a Trainer: the cross-entropy
    averaged over the images, top-1 / top-5 accuracy micro-averaged over them.
    """
    network.eval()
    device = next(network.parameters()).device
    metrics = accuracy_metrics(num_classes, prefix).to(device)
    total_loss, count = 0.0, 0
    for batch in batches:
        images, targets = batch[0].to(device), batch[1].to(device)
        logits = network(images)
        metrics.update(logits, targets)
        total_loss += float(F.cross_entropy(logits, targets, reduction="sum"))
        count += len(targets)
    if count == 0:
        raise ValueError("batches is empty: nothing to evaluate.")
    return {f"{prefix}loss": total_loss / count, **{name: float(value) for name, value in metrics.compute().items()}}


__all__ = ["accuracy_metrics", "evaluate_classifier", "log_evaluation_step", "log_training_step"]
