"""Pruning from Scratch (arXiv:1909.12579) and its conventional baseline: gate learning and the pruned classifier.

**Gate learning** (:class:`GateLearning`, Sec. 3.2). A width-expanded network (``model.net.width_multiplier``; the
official code's ``-e``) is built at its random initialisation with a :class:`~networks.pruning.gates.ChannelGate`
after the BN of every gated layer (``model.net.gate_layer``). Only the gates are trained (they are the optimizer's
only parameters; every weight keeps its initial value), with

    L = CE + lambda * (mean_channels |g| - r)^2          (Eq. 3; lambda = ``sparsity_lambda``, r = ``sparsity_level``)

and the gates clamped to [0, 1] after every step. Validation logs the fraction of non-zero gates and
``val/gate_selection``, which encodes the official checkpoint rule: the kept gates are those of the best
validation accuracy among validations whose fraction of non-zero gates is <= r, else the latest ones
(``val/gate_selection`` is the accuracy on qualifying validations and ``(step + 1) / (total steps + 2) - 1`` < 0
otherwise, growing with training, so ``monitor: val/gate_selection`` with ``monitor_mode: max`` picks exactly that
checkpoint). CIFAR validates once per epoch; the ImageNet pass validates every 500 iterations, as the official
``learn_gates_imagenet.py`` does (``trainer.val_check_interval``). The checkpoint may also be the official one
(script/learn_gates.py's ``checkpoint.pth`` of the CIFAR ResNets / VGG-16-BN): :meth:`GateLearning.official_format`.

**Pruned classifier** (:class:`PrunedClassifier`, Sec. 3.4 and 4): the suite's
:class:`~lightning_modules.classification.ImageClassifier` on a network built at a pruned structure
(``model.net.structure``, :func:`networks.pruning.structure.pruned_network`; ``null``: the full network):

* retraining of Pruning from Scratch: the pruned network from a fresh random initialisation;
* the conventional baseline: the full network trained, pruned by a trained-weight criterion
  (``model.prune.criterion=bn_scale|filter_l1``), then fine-tuned from its kept channels
  (``model.init_kept_from=<the full network's checkpoint>``).

``model.net.structure`` may also be the official per-layer channel list (``pruned_cfg-<p>.pkl`` of script/prune_model.py;
the ResNet residual width from ``model.net.official_expansion``, see :mod:`networks.pruning.official`), and
``ckpt_path=`` an official checkpoint of the CIFAR ResNets or VGG-16-BN (script/train_pruned.py's
``best_checkpoint.pth``, full or pruned): :meth:`PrunedClassifier.official_format`.

**The prune step** between them is a phase task, not a module's loop: :func:`networks.pruning.tasks.prune` builds
either module from the config, loads the checkpoint to prune (``ckpt_path``) and cuts its channels to
``model.prune`` (the module's ``prune_settings``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from lightning_modules.classification import ImageClassifier
from metrics.classification import accuracy_metrics
from networks.classification import build_backbone
from networks.pruning.families import PrunableFamily, prunable_family
from networks.pruning.gates import ChannelGate, channel_gates, clamp_gates
from networks.pruning.official import CRITERION as OFFICIAL_CFG
from networks.pruning.official import OfficialNetwork, official_network
from networks.pruning.pruner import PruneSettings
from networks.pruning.structure import Structure
from networks.pruning.surgery import copy_kept_channels
from visionsuite.errors import ConfigError, TrainingDivergedError
from visionsuite.io import is_unset
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain
from visionsuite.official_weights import OfficialFormat

Batch = tuple[torch.Tensor, ...]
#: The options of a prunable network that describe its architecture (what the checkpoints record).
_PRUNABLE_OPTIONS = ("width_multiplier", "channels")



def _family(net: nn.Module) -> PrunableFamily:
    """The prunable family of a zoo network; a ConfigError naming ``model.net.name`` otherwise."""
    spec = getattr(net, "backbone_spec", None)
    if spec is None:
        raise ConfigError(f"model.net builds a {type(net).__name__}, not a backbone of the zoo "
                          "(networks.classification.build_backbone): its channel groups are unknown.")
    try:
        return prunable_family(spec.name)
    except ValueError as error:
        raise ConfigError(f"model.net.{error}") from None


def _prune_settings(prune: Mapping[str, Any] | None) -> PruneSettings:
    """``model.prune`` validated (a ConfigError naming the key)."""
    try:
        return PruneSettings.from_mapping(plain(prune))
    except ValueError as error:
        raise ConfigError(f"model.prune.{error}") from None


def _width_multiplier(net: nn.Module) -> float:
    return float(net.backbone_spec.options.get("width_multiplier", 1.0))


def _official_network(family: PrunableFamily) -> OfficialNetwork:
    try:
        return official_network(family.name)
    except ValueError as error:
        raise ConfigError(f"model.net.{error}") from None


class GateLearning(SuiteModule):
    """Learns channel gates on a randomly initialised, width-expanded network (see the module docstring).

    Args:
        net: a prunable zoo network built with gates (``model.net``: ``width_multiplier``, ``gate_layer``).
        num_classes: classes of the dataset.
        sparsity_level: r, the target mean gate (official CIFAR 0.2, ImageNet 0.5).
        sparsity_lambda: lambda, weight of the sparsity term (official CIFAR 0.5, ImageNet 0.05).
        prune: ``model.prune`` settings the prune step cuts this module's gates with.
        input_size, in_channels: the example input of ``mode=summary`` and of the multiply-add count.
        optimizer, scheduler, scheduler_interval: see :class:`visionsuite.module.SuiteModule` (Adam 0.01).
    """

    def __init__(
        self,
        net: nn.Module,
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
        if not 0.0 < float(sparsity_level) <= 1.0:
            raise ConfigError(f"model.sparsity_level={sparsity_level}: r must be in (0, 1].")
        if float(sparsity_lambda) < 0:
            raise ConfigError(f"model.sparsity_lambda={sparsity_lambda}: lambda must be >= 0.")
        self.family = _family(net)
        self.prune_settings = _prune_settings(prune)
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        options = net.backbone_spec.options
        self.hparams["backbone"] = {"name": self.family.name,
                                    "options": {key: plain(options[key]) for key in _PRUNABLE_OPTIONS if key in options}}
        self.hparams["prune"] = plain(prune)
        self.width_multiplier = _width_multiplier(net)
        self.net = net
        self.groups = self.family.groups_of(self.net)
        try:
            self._gates = channel_gates(self.net, self.groups)
        except ValueError as error:
            raise ConfigError(f"model.net.gate_layer: {error}") from None
        gate_parameters = {id(gate.gates) for gate in self._gates}
        for parameter in self.net.parameters():  # the weights stay at their random initialisation
            parameter.requires_grad_(id(parameter) in gate_parameters)
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")

    def official_format(self) -> OfficialFormat:
        """The official gate-learning checkpoint (script/learn_gates.py ``checkpoint.pth``: the expanded network's
        random weights and its gates, ``<layer>.gates``) of the CIFAR ResNets and VGG-16-BN."""
        network = _official_network(self.family)
        expansion = round(self.width_multiplier * network.base_width)
        return OfficialFormat(self.net, network.convert_key,
                              f"gated {network.describe()} at expansion -e {expansion} (model.net.width_multiplier)")

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


class PrunedClassifier(ImageClassifier):
    """A classifier whose network is a prunable family, at a pruned structure or full (module docstring).

    Args:
        net: a prunable zoo network, at the widths of a structure
            (:func:`networks.pruning.structure.pruned_network`, ``model.net.structure``) or full.
        num_classes: classes of the dataset.
        init_kept_from: a checkpoint of the full network (this module without a structure) whose kept channels
            initialise the pruned network (the baseline's fine-tuning); ``None``: random initialisation.
        prune: ``model.prune`` settings the prune step cuts this network with (the baseline).
        decay_exempt: no weight decay on depthwise convs, BN and biases (the official ImageNet retraining).
        input_size, in_channels, label_smoothing, optimizer, scheduler, scheduler_interval: as
            :class:`~lightning_modules.classification.ImageClassifier`.
    """

    def __init__(self, net: nn.Module, num_classes: int, init_kept_from: str | None = None,
                 prune: Mapping[str, Any] | None = None, decay_exempt: bool = False, input_size: int = 32,
                 in_channels: int = 3, label_smoothing: float = 0.0, optimizer: OptimizerFactory | None = None,
                 scheduler: SchedulerFactory | None = None,
                 scheduler_interval: Literal["epoch", "step"] = "epoch") -> None:
        family = _family(net)
        super().__init__(net, num_classes, input_size=input_size, in_channels=in_channels,
                         label_smoothing=label_smoothing, optimizer=optimizer, scheduler=scheduler,
                         scheduler_interval=scheduler_interval)
        self.family = family
        self.structure: Structure | None = getattr(net, "structure", None)
        self.structure_path: str | None = getattr(net, "structure_path", None)
        self.width_multiplier = _width_multiplier(net)
        self.prune_settings = _prune_settings(prune)
        loaded = self.structure
        self.hparams["backbone"] = {"name": family.name, "options": {"width_multiplier": self.width_multiplier}}
        self.hparams["structure_channels"] = None if loaded is None else list(loaded.channels)
        if loaded is not None and loaded.criterion == OFFICIAL_CFG:
            self.summary_notes["structure"] = (
                f"official per-layer list {self.structure_path} (reduction {loaded.achieved:.4f}); residual width "
                f"{loaded.extra['official_expansion']} from {loaded.extra['expansion_from']}")
        self.hparams["prune"] = dict(plain(prune) or {})
        self.groups = family.groups_of(self.net)
        self.decay_exempt = bool(decay_exempt)
        if not is_unset(init_kept_from):
            self.copy_kept_from(str(init_kept_from))

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: str | Path, *args: Any, **kwargs: Any) -> PrunedClassifier:
        """Lightning's loading, with the network rebuilt at the widths the checkpoint stores (unless ``net`` is
        given)."""
        if "net" not in kwargs:
            stored = torch.load(checkpoint_path, map_location="cpu", weights_only=False).get("hyper_parameters") or {}
            backbone = stored["backbone"]
            options = dict(backbone.get("options") or {})
            if stored.get("structure_channels") is not None:
                options["channels"] = list(stored["structure_channels"])
            kwargs["net"] = build_backbone(backbone["name"], int(stored["num_classes"]), **options)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def optimizer_parameters(self) -> list[dict[str, Any]] | Any:
        """All parameters; with ``decay_exempt`` the depthwise convs, BN and biases in a group without decay."""
        if not self.decay_exempt:
            return self.parameters()
        exempt: list[nn.Parameter] = []
        for module in self.modules():
            depthwise = isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
            for name, parameter in module.named_parameters(recurse=False):
                if depthwise or isinstance(module, nn.modules.batchnorm._BatchNorm) or name == "bias":
                    exempt.append(parameter)
        exempt_ids = {id(parameter) for parameter in exempt}
        decayed = [parameter for parameter in self.parameters() if id(parameter) not in exempt_ids]
        return [{"params": decayed}, {"params": exempt, "weight_decay": 0.0}]

    def official_format(self) -> OfficialFormat:
        """The official checkpoints of the CIFAR ResNets and VGG-16-BN (script/train_pruned.py's bare state dict,
        full or pruned), placed by the family's converter into this network at its widths."""
        network = _official_network(self.family)
        if self.structure is None:
            widths = f"at width x{self.width_multiplier:g} (the full network; model.net.width_multiplier)"
        else:
            widths = f"at the per-layer widths of model.net.structure={self.structure_path}"
        if network.name.startswith("resnet"):
            residual = round(self.width_multiplier * network.base_width)
            how = (f" ({self.structure.extra['expansion_from']}; model.net.official_expansion sets it)"
                   if self.structure is not None and self.structure.criterion == OFFICIAL_CFG else "")
            widths += f", residual width {residual}{how}"
        return OfficialFormat(self.net, network.convert_key, f"{network.describe()} {widths}")

    def copy_kept_from(self, path: str) -> None:
        """Initialise the pruned network with the kept channels of a full-network checkpoint (the baseline)."""
        if self.structure is None:
            raise ConfigError("model.init_kept_from needs model.net.structure (which channels to keep).")
        if not self.structure.kept:
            raise ConfigError(f"model.init_kept_from needs the kept channel indices of a structure.json; "
                              f"model.net.structure={self.structure_path} gives widths only (an official channel "
                              "list).")
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"model.init_kept_from={file}: no such checkpoint file.")
        checkpoint = torch.load(file, map_location="cpu", weights_only=False)
        state = {key[len("net."):]: value for key, value in checkpoint.get("state_dict", {}).items()
                 if key.startswith("net.")}
        source = self.family.build(self.hparams.num_classes, width_multiplier=self.structure.width_multiplier)
        try:
            source.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError(f"model.init_kept_from={file}: not a checkpoint of the full {self.family.name} at "
                              f"width {self.structure.width_multiplier} ({str(error).splitlines()[0]}).") from None
        copy_kept_channels(source, self.net, self.family.groups_of(source), self.structure.kept)


__all__ = ["GateLearning", "PrunedClassifier"]
