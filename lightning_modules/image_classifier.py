"""One image classifier for every backbone of the zoo (``networks.classification``), and AugRefine's refine phase.

Cross-entropy training of ``self.net`` (a zoo backbone built by name, so a checkpoint rebuilds itself with
``ImageClassifier.load_from_checkpoint(path)``). Soft targets from MixUp / CutMix (``data.augment``) flow through
the loss (cross-entropy against probabilities) and the train accuracy (against their dominant class).

AugRefine (arXiv:1909.09148, Sec. 3-4): after training with heavy augmentation, the model is refined for a short
final phase on less-augmented data. ``init_from`` starts the refine phase from the weights of a phase-1
checkpoint (weights only: a fresh optimizer, schedule and epoch count). When the DataModule yields a second,
heavy view of each training image (``data.paired_augment``), the module also logs the loss of the current
model on both views of the same images (``train/loss_clean``, ``train/loss_augmented``, ``train/loss_gap``):
the distribution gap the paper is about, measured in evaluation mode without gradients.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from lightning_modules.augmentation_gap import AugmentationGapPlot
from metrics.classification import accuracy_metrics, log_evaluation_step, log_training_step
from networks.classification import build_backbone
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain

Batch = tuple[torch.Tensor, ...]
#: Backbone options that point at files and are not stored in the checkpoint's hyper-parameters.
_FILE_OPTIONS = ("weights_path",)


class ImageClassifier(SuiteModule):
    """Trains and evaluates a zoo backbone as an image classifier.

    Args:
        backbone: ``{name: <zoo name>, options: {...}}`` (``conf/model/backbone/<name>.yaml``); options go
            to the family's constructor (``width_multiplier``, ``channels``, ``weights_path``...).
        num_classes: classes of the dataset.
        input_size: image side at which ``mode=summary`` counts multiply-adds.
        in_channels: image channels (for the summary's example input).
        label_smoothing: cross-entropy label smoothing.
        init_from: a classifier checkpoint whose network weights initialise this one (AugRefine's refine
            phase; weights only).
        require_init_from: fail when ``init_from`` is not given (the refine phase must start from a model).
        backbone_from_init: take the backbone (name and options) from ``init_from``'s checkpoint instead of
            ``backbone`` (``augrefine_refine`` refines any classifier checkpoint of the suite).
        gap_log_every_n_steps: with paired views, measure the clean / augmented losses every n steps.
        optimizer, scheduler, scheduler_interval: see :class:`visionsuite.module.SuiteModule`.
    """

    headline_artifacts = ("augmentation_gap_plot",)

    def __init__(
        self,
        backbone: Mapping[str, Any],
        num_classes: int,
        input_size: int = 32,
        in_channels: int = 3,
        label_smoothing: float = 0.0,
        init_from: str | None = None,
        require_init_from: bool = False,
        backbone_from_init: bool = False,
        gap_log_every_n_steps: int = 1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/classifier.yaml")
        backbone = plain(backbone)
        if not isinstance(backbone, Mapping) or not backbone.get("name"):
            raise ConfigError(f"model.backbone={backbone!r}: give {{name: <backbone>, options: {{...}}}}, e.g. "
                              "model/backbone=resnet56.")
        if init_from in ("", "None", "null"):
            init_from = None  # an empty command-line value (e.g. an unset ckpt_path passed on by a chain)
        if require_init_from and init_from is None:
            raise ConfigError("The refine phase needs a trained classifier: python run.py experiment=augrefine_refine "
                              "ckpt_path=<a classifier checkpoint .ckpt> (or model.init_from=<file>).")
        if backbone_from_init and init_from is not None:
            backbone = _stored_backbone(_read_checkpoint(init_from), f"model.init_from={init_from}")
        options = dict(plain(backbone.get("options")) or {})
        if gap_log_every_n_steps < 1:
            raise ConfigError(f"model.gap_log_every_n_steps={gap_log_every_n_steps}: must be >= 1.")
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "init_from", "require_init_from",
                                          "backbone_from_init"])
        stored = {key: value for key, value in options.items() if key not in _FILE_OPTIONS}
        self.hparams["backbone"] = {"name": str(backbone["name"]), "options": stored}
        self.net: nn.Module = build_backbone(str(backbone["name"]), num_classes, **options)
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        if init_from is not None:
            self.load_network_weights(init_from)

    # ------------------------------------------------------------------ checkpoints
    def load_network_weights(self, path: str | Path) -> None:
        """Copy the network weights of the classifier checkpoint ``path`` into ``self.net`` (weights only)."""
        checkpoint = _read_checkpoint(path)
        self._check_compatible(checkpoint, f"model.init_from={path}")
        state = {key[len("net."):]: value for key, value in checkpoint["state_dict"].items() if key.startswith("net.")}
        try:
            self.net.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError(f"model.init_from={path}: its network does not fit backbone "
                              f"{self.hparams.backbone} ({str(error).splitlines()[0]}).") from None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Before Lightning restores ``ckpt_path``: refuse a checkpoint of another backbone or class count."""
        self._check_compatible(checkpoint, "ckpt_path")

    def _check_compatible(self, checkpoint: Mapping[str, Any], where: str) -> None:
        stored = checkpoint.get("hyper_parameters") or {}
        backbone = _stored_backbone(checkpoint, where)
        ours = self.hparams.backbone
        if backbone["name"] != ours["name"] or int(stored["num_classes"]) != int(self.hparams.num_classes):
            raise ConfigError(
                f"{where} holds backbone {backbone['name']} with {stored['num_classes']} classes, but the "
                f"configuration builds backbone {ours['name']} with {self.hparams.num_classes} classes; set "
                f"model/backbone={backbone['name']} model.num_classes={stored['num_classes']} (and the matching "
                "data) or give a checkpoint of this backbone.")
        if dict(backbone.get("options") or {}) != dict(ours.get("options") or {}):
            raise ConfigError(f"{where} holds backbone {backbone['name']} with options {dict(backbone['options'])}, "
                              f"but the configuration uses options {dict(ours['options'])}.")

    def configure_callbacks(self) -> list[pl.Callback]:
        """The clean / augmented loss table and plot (written only when the data yields paired views)."""
        return [AugmentationGapPlot()]

    # ------------------------------------------------------------------ steps
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor]:
        images, targets = batch[0], batch[1]
        logits = self.net(images)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)
        ensure_finite(loss, "training loss", self.current_epoch, self.global_step)
        # Soft targets (MixUp / CutMix): the accuracy counts the dominant class of each mixed target.
        hard_targets = targets.argmax(dim=1) if targets.ndim == 2 else targets
        log_training_step(self, loss, logits, hard_targets, self.train_metrics)
        outputs = {"loss": loss}
        if len(batch) == 3 and batch_idx % self.hparams.gap_log_every_n_steps == 0:
            outputs.update(self._distribution_gap(images, targets, batch[2]))
        return outputs

    @torch.no_grad()
    def _distribution_gap(self, clean: torch.Tensor, targets: torch.Tensor,
                          augmented: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of the current model on the clean and on the augmented view of the same images.

        Evaluation mode (BatchNorm running statistics, no dropout), so both losses are measured alike and the
        statistics are not updated with the heavy view (arXiv:1909.09148's gap between the two distributions).
        """
        was_training = self.net.training
        self.net.eval()
        logits = self.net(torch.cat([clean, augmented]))
        self.net.train(was_training)
        clean_logits, augmented_logits = logits.split(len(clean))
        gap = {
            "loss_clean": F.cross_entropy(clean_logits, targets),
            "loss_augmented": F.cross_entropy(augmented_logits, targets),
        }
        gap["loss_gap"] = gap["loss_augmented"] - gap["loss_clean"]
        for name, value in gap.items():
            self.log(f"train/{name}", value, on_step=True, on_epoch=True, batch_size=len(clean))
        return {name: value.detach() for name, value in gap.items()}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: Batch, stage: str, metrics: nn.Module) -> None:
        log_evaluation_step(self, stage, self.net(batch[0]), batch[1], metrics)


def _stored_backbone(checkpoint: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``{name, options}`` of the backbone a classifier checkpoint was trained with."""
    stored = checkpoint.get("hyper_parameters") or {}
    backbone = stored.get("backbone")
    if not isinstance(backbone, Mapping) or "name" not in backbone or "num_classes" not in stored:
        raise ConfigError(f"{where}: not a checkpoint of the suite's image classifier "
                          "(lightning_modules/image_classifier.py); it has no backbone / num_classes.")
    return {"name": backbone["name"], "options": dict(backbone.get("options") or {})}


def _read_checkpoint(path: str | Path) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"model.init_from={file}: no such checkpoint file.")
    try:
        # A Lightning checkpoint of this suite (hyper-parameters are plain containers); the user's own file.
        checkpoint = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
        raise ConfigError(f"model.init_from={file}: not a readable checkpoint ({error}).") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise ConfigError(f"model.init_from={file}: not a Lightning checkpoint (no state_dict).")
    return checkpoint


__all__ = ["ImageClassifier"]
