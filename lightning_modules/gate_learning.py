"""Gate learning of Pruning from Scratch (arXiv:1909.12579, Sec. 3.2): channel gates trained on random weights.

A width-expanded network (``model.backbone.options.width_multiplier``; the official code's ``-e``) is built at
its random initialisation with a :class:`~networks.pruning.gates.ChannelGate` after the BN of every gated
layer. Only the gates are trained (they are the optimizer's only parameters; every weight keeps its
initial value), with

    L = CE + lambda * (mean_channels |g| - r)^2          (Eq. 3; lambda = ``sparsity_lambda``, r = ``sparsity_level``)

and the gates clamped to [0, 1] after every step. Validation logs the fraction of non-zero gates and
``val/gate_selection``, which encodes the official checkpoint rule: the kept gates are those of the best
validation accuracy among validations whose fraction of non-zero gates is <= r, else the latest ones
(``val/gate_selection`` is the accuracy on qualifying validations and ``(step + 1) / (total steps + 2) - 1`` < 0
otherwise, growing with training, so ``monitor: val/gate_selection`` with ``monitor_mode: max`` picks exactly that
checkpoint). CIFAR validates once per epoch; the ImageNet pass validates every 500 iterations, as the official
``learn_gates_imagenet.py`` does (``trainer.val_check_interval``).

``mode=test`` with the gate checkpoint prunes (``lightning_modules.pruning_callbacks.PruneOnTest``): the
gates are ranked globally and cut to ``model.prune.target`` (:mod:`networks.pruning.search`). The checkpoint may
also be the official one (script/learn_gates.py's ``checkpoint.pth`` of the CIFAR ResNets / VGG-16-BN, the
gated expanded network): :meth:`GateLearning.official_format`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from metrics.classification import accuracy_metrics
from networks.pruning.families import prunable_family
from networks.pruning.gates import ChannelGate, channel_gates, clamp_gates
from networks.pruning.official import official_network
from networks.pruning.pruner import PruneSettings
from visionsuite.errors import ConfigError, TrainingDivergedError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain
from visionsuite.official_weights import OfficialFormat

Batch = tuple[torch.Tensor, ...]


def backbone_spec(backbone: Mapping[str, Any] | Any) -> tuple[str, dict[str, Any]]:
    """``(name, options)`` of a ``model.backbone`` node ``{name: ..., options: {...}}``."""
    backbone = plain(backbone)
    if not isinstance(backbone, Mapping) or not backbone.get("name"):
        raise ConfigError(f"model.backbone={backbone!r}: give {{name: <backbone>, options: {{width_multiplier: ...}}}}.")
    options = dict(plain(backbone.get("options")) or {})
    unknown = set(options) - {"width_multiplier", "channels"}
    if unknown:
        raise ConfigError(f"model.backbone.options has keys {sorted(unknown)} that a prunable backbone does not take; "
                          "use width_multiplier and/or channels.")
    return str(backbone["name"]), options


class GateLearning(SuiteModule):
    """Learns channel gates on a randomly initialised, width-expanded network (see the module docstring).

    Args:
        backbone: ``{name, options: {width_multiplier, channels}}`` of a prunable family.
        num_classes: classes of the dataset.
        sparsity_level: r, the target mean gate (official CIFAR 0.2, ImageNet 0.5).
        sparsity_lambda: lambda, weight of the sparsity term (official CIFAR 0.5, ImageNet 0.05).
        prune: ``model.prune`` settings used when this module's checkpoint is pruned (``mode=test``).
        input_size, in_channels: the example input of ``mode=summary`` and of the multiply-add count.
        optimizer, scheduler, scheduler_interval: see :class:`visionsuite.module.SuiteModule` (Adam 0.01).
    """

    def __init__(
        self,
        backbone: Mapping[str, Any],
        num_classes: int,
        sparsity_level: float = 0.2,
        sparsity_lambda: float = 0.5,
        prune: Mapping[str, Any] | None = None,
        input_size: int = 32,
        in_channels: int = 3,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/pfs_gate_learning.yaml")
        name, options = backbone_spec(backbone)
        if not 0.0 < float(sparsity_level) <= 1.0:
            raise ConfigError(f"model.sparsity_level={sparsity_level}: r must be in (0, 1].")
        if float(sparsity_lambda) < 0:
            raise ConfigError(f"model.sparsity_lambda={sparsity_lambda}: lambda must be >= 0.")
        self.family = prunable_family(name)
        self.prune_settings = PruneSettings.from_config(plain(prune))
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.hparams["backbone"] = {"name": name, "options": options}
        self.hparams["prune"] = plain(prune)
        self.width_multiplier = float(options.get("width_multiplier", 1.0))
        self.net: nn.Module = self.family.build(num_classes, channels=options.get("channels"),
                                                width_multiplier=self.width_multiplier, gate_layer=ChannelGate)
        self.groups = self.family.groups_of(self.net)
        self._gates = channel_gates(self.net, self.groups)
        gate_parameters = {id(gate.gates) for gate in self._gates}
        for parameter in self.net.parameters():  # the weights stay at their random initialisation
            parameter.requires_grad_(id(parameter) in gate_parameters)
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")

    def official_format(self) -> OfficialFormat:
        """The official gate-learning checkpoint (script/learn_gates.py ``checkpoint.pth``: the expanded network's
        random weights and its gates, ``<layer>.gates``) of the CIFAR ResNets and VGG-16-BN."""
        network = official_network(self.family.name)
        expansion = round(self.width_multiplier * network.base_width)
        return OfficialFormat(self.net, network.convert_key,
                              f"gated {network.describe()} at expansion -e {expansion} "
                              "(model.backbone.options.width_multiplier)")

    # ------------------------------------------------------------------ gates
    @property
    def gate_modules(self) -> list[ChannelGate]:
        """The gates, in channel-group order."""
        return self._gates

    def all_gates(self) -> torch.Tensor:
        """Every gate value, concatenated over layers."""
        return torch.cat([gate.gates.flatten() for gate in self._gates])

    def optimizer_parameters(self) -> list[nn.Parameter]:
        """Only the gates are trained (Sec. 3.2)."""
        return [gate.gates for gate in self._gates]

    def sparsity_loss(self) -> torch.Tensor:
        """lambda * (mean |g| - r)^2 (Eq. 3)."""
        mean_gate = self.all_gates().abs().mean()
        return self.hparams.sparsity_lambda * (mean_gate - self.hparams.sparsity_level) ** 2

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimizer step, then the gates clamped to [0, 1]; all-zero gates stop the run with advice."""
        super().optimizer_step(*args, **kwargs)
        clamp_gates(self._gates)
        if not bool(torch.any(self.all_gates() > 0)):
            raise TrainingDivergedError(
                f"Every channel gate collapsed to 0 at epoch {self.current_epoch}, step {self.global_step}: the "
                f"network outputs a constant and no gradient reaches the gates. Lower the sparsity weight "
                f"(model.sparsity_lambda={self.hparams.sparsity_lambda}) or raise the target mean gate "
                f"(model.sparsity_level={self.hparams.sparsity_level}), or lower the learning rate "
                f"(model.optimizer.lr).")

    # ------------------------------------------------------------------ steps
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch[0], batch[1]
        logits = self.net(images)
        cross_entropy = F.cross_entropy(logits, targets)
        sparsity = self.sparsity_loss()
        loss = cross_entropy + sparsity
        ensure_finite(loss, "gate-learning loss", self.current_epoch, self.global_step)
        self.train_metrics.update(logits.detach(), targets)
        size = len(images)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        self.log("train/loss_ce", cross_entropy, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/loss_sparsity", sparsity, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/gate_mean", self.all_gates().detach().mean(), on_step=False, on_epoch=True, batch_size=size)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        """The fraction of non-zero gates and the official checkpoint-selection score (module docstring)."""
        accuracy = self.val_metrics["acc1"].compute()
        nonzero = (self.all_gates().detach() != 0).float().mean()
        if float(nonzero) <= self.hparams.sparsity_level:
            selection = accuracy
        else:  # below every accuracy, and later validations above earlier ones (several may share an epoch)
            total = float(self.trainer.estimated_stepping_batches)
            total = total if math.isfinite(total) else float(self.global_step)
            selection = torch.tensor((self.global_step + 1) / (total + 2) - 1.0)
        self.log("val/gate_nonzero_fraction", nonzero, prog_bar=True)
        self.log("val/gate_selection", selection.to(nonzero))

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: Batch, stage: str, metrics: nn.Module) -> None:
        images, targets = batch[0], batch[1]
        logits = self.net(images)
        metrics.update(logits, targets)
        self.log(f"{stage}/loss", F.cross_entropy(logits, targets), batch_size=len(targets), sync_dist=True)
        self.log_dict(metrics, prog_bar=stage == "val")


__all__ = ["GateLearning", "backbone_spec"]
