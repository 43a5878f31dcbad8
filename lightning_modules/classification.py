"""One image classifier for every backbone of the zoo (``networks.classification``), and AugRefine's refine phase.

Cross-entropy training of ``net``, a network the config builds (``model.net``: ``conf/model/backbone/<name>.yaml``,
the zoo's ``build_backbone``). The checkpoint stores the backbone's name and options (the network's
``backbone_spec``), so ``ImageClassifier.load_from_checkpoint(path)`` rebuilds it without a config. Soft targets from
MixUp / CutMix (``data.augment``) flow through the loss (cross-entropy against probabilities) and the train accuracy
(against their dominant class).

AugRefine (arXiv:1909.09148, Sec. 3-4): after training with heavy augmentation, the model is refined for a short
final phase on less-augmented data. ``init_from`` starts the refine phase from the weights of a phase-1
checkpoint (weights only: a fresh optimizer, schedule and epoch count); ``model/backbone=from_checkpoint`` builds the
network that checkpoint holds (:meth:`ImageClassifier.network_of_checkpoint`). When the DataModule yields a second,
heavy view of each training image (``data.paired_augment``), the module also logs the loss of the current model on
both views of the same images (``train/loss_clean``, ``train/loss_augmented``, ``train/loss_gap``): the
distribution gap the paper is about, measured in evaluation mode without gradients.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from callbacks.classification import AugmentationGapPlot
from metrics.classification import accuracy_metrics, log_evaluation_step, log_training_step
from networks.classification import build_backbone
from visionsuite.errors import ConfigError
from visionsuite.io import is_unset
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain

Batch = tuple[torch.Tensor, ...]


class ImageClassifier(SuiteModule):
    """Trains and evaluates a network as an image classifier.

    Args:
        net: the classifier network (a zoo backbone: ``model.net``).
        num_classes: classes of the dataset.
        input_size: image side at which ``mode=summary`` counts multiply-adds.
        in_channels: image channels (for the summary's example input).
        label_smoothing: cross-entropy label smoothing.
        init_from: a classifier checkpoint whose network weights initialise this one (AugRefine's refine
            phase; weights only).
        require_init_from: fail when ``init_from`` is not given (the refine phase must start from a model).
        gap_log_every_n_steps: with paired views, measure the clean / augmented losses every n steps.
        optimizer, scheduler, scheduler_interval: see :class:`visionsuite.module.SuiteModule`.
    """

    headline_artifacts = ("augmentation_gap_plot",)

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        input_size: int = 32,
        in_channels: int = 3,
        label_smoothing: float = 0.0,
        init_from: str | None = None,
        require_init_from: bool = False,
        gap_log_every_n_steps: int = 1,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/classifier.yaml")
        init_from = None if is_unset(init_from) else init_from
        if require_init_from and init_from is None:
            raise ConfigError("The refine phase needs a trained classifier: python run.py experiment=augrefine_refine "
                              "ckpt_path=<a classifier checkpoint .ckpt> (or model.init_from=<file>).")
        if gap_log_every_n_steps < 1:
            raise ConfigError(f"model.gap_log_every_n_steps={gap_log_every_n_steps}: must be >= 1.")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "init_from", "require_init_from"])
        self.hparams["backbone"] = self.stored_backbone(net)
        self.net = net
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        if init_from is not None:
            self.load_network_weights(init_from)

    @staticmethod
    def stored_backbone(net: nn.Module) -> dict[str, Any] | None:
        """``{name, options}`` of a zoo network (its ``backbone_spec``), what the checkpoint stores; ``None`` for a
        network the zoo did not build."""
        spec = getattr(net, "backbone_spec", None)
        return None if spec is None else {"name": spec.name,
                                       "options": {key: plain(value) for key, value in spec.options.items()}}

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def network_of_checkpoint(cls, checkpoint: str | Path, num_classes: int) -> nn.Module:
        """The zoo network a classifier checkpoint was trained with (its stored backbone), at ``num_classes`` outputs,
        at its initialisation: what ``model/backbone=from_checkpoint`` builds (``augrefine_refine``)."""
        if is_unset(checkpoint):
            raise ConfigError("The refine phase needs a trained classifier: python run.py experiment=augrefine_refine "
                              "ckpt_path=<a classifier checkpoint .ckpt> (or model.init_from=<file>).")
        backbone = _stored_backbone(_read_checkpoint(checkpoint), f"model.init_from={checkpoint}")
        return build_backbone(backbone["name"], int(num_classes), **backbone["options"])

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> ImageClassifier:
        """Lightning's loading, with the network rebuilt from the backbone the checkpoint stores (unless ``net`` is
        given), so a classifier checkpoint loads without its config."""
        if "net" not in kwargs:
            checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
            stored = checkpoint.get("hyper_parameters") or {} if isinstance(checkpoint, dict) else {}
            backbone = stored.get("backbone")
            if not isinstance(backbone, Mapping) or "num_classes" not in stored:
                raise ValueError(f"{checkpoint_path}: not a checkpoint of the suite's image classifier (no backbone / "
                                 "num_classes in its hyper-parameters).")
            kwargs["net"] = build_backbone(backbone["name"], int(stored["num_classes"]),
                                           **dict(backbone.get("options") or {}))
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

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
        if ours is None:  # a network the zoo did not build: the state dict's keys and shapes decide
            return
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
                          "(lightning_modules/classification.py); it has no backbone / num_classes.")
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
