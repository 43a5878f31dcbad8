"""The DARTS family's LightningModules: the architecture search and the training of the cells it finds.

:class:`ArchitectureSearch`, DARTS (arXiv:1806.09055, Alg. 1): every iteration first updates the architecture
parameters alpha on a batch of the architecture split, then the network weights on a batch of the weight split.
How alpha's gradient is computed is a separate strategy (``model.arch_step.gradient``: ``first_order``,
``second_order`` of DARTS, ``amended`` of Amended-DARTS arXiv:1910.11831; ``networks.nas.arch_gradients``).
PC-DARTS (partial channels, edge normalisation) and the ImageNet stem are options of the injected search network
(``model.net``, :class:`~networks.nas.search_space.SearchNetwork`), so they combine with every gradient mode.

Manual optimization (two optimizers, alternating): the weight step computes only weight gradients (alpha is a
constant of its graph) and the architecture step only what its strategy needs. Gradients are taken with
``torch.autograd.grad`` and averaged over processes explicitly, so a DDP run keeps identical parameters on every
rank whatever the strategy's ``find_unused_parameters`` setting (DDP never all-reduces ``autograd.grad`` results,
and alpha is unused in the weight step). Gradient clipping of the weights goes through ``self.clip_gradients``;
the weight scheduler is stepped after the last training batch of each epoch (before validation and the
end-of-epoch checkpoint, like Lightning's automatic epoch schedulers), so a resumed run continues with the right
learning rate. Files and pictures (per-epoch architecture snapshots, ``genotype.json``, diagrams, a P-DARTS
stage's survivors) are written by :class:`callbacks.nas.ArchitectureWriter`, which the module declares.

P-DARTS (``progressive``, arXiv:1904.12760) makes the run one stage of a progressive search
(``networks.nas.progressive``): the stage's search network has ``layers[stage - 1]`` cells over the operations
that survived the previous stage (its config interpolates both), the skip-connect dropout decays during the stage,
a non-final stage ends by dropping the weakest candidates of every edge, and the genotype keeps at most
``max_skip_connect`` skip-connects in the normal cell. The checkpoint carries the stage and the candidate
operations (``checkpoint["progressive"]``); resuming it into another stage is an error.

:class:`GenotypeClassifier` trains an evaluation network built from a genotype (``model.net``:
:class:`~networks.nas.networks.NetworkCIFAR` / :class:`~networks.nas.networks.NetworkImageNet`), the papers'
protocol: DARTS Sec. 3.1.2 / A.2, PC-DARTS (arXiv:1907.05737) Sec. 4.2-4.3, P-DARTS Sec. 4.2-4.4: cross-entropy
plus an auxiliary-head loss (weight 0.4), drop-path whose rate grows linearly from 0 to ``drop_path_prob`` over
training, and (on ImageNet) label smoothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

from callbacks.nas import ArchitectureWriter
from metrics.classification import accuracy_metrics, log_evaluation_step, log_training_step
from networks.nas.arch_gradients import ARCH_GRADIENTS, average_across_processes, build_arch_gradient
from networks.nas.compiled_forward import (
    check_device,
    compile_forward,
    normalize_compile,
    recompile_for_skip_dropout,
)
from networks.nas.genotypes import Genotype
from networks.nas.networks import NetworkCIFAR, NetworkImageNet, count_parameters_m
from networks.nas.official import OfficialKeyConverter, official_description
from networks.nas.progressive import StagePlan, skip_dropout_rate, stage_plan
from networks.nas.search_space import SearchNetwork
from visionsuite.complexity import count_multiply_adds
from visionsuite.errors import ConfigError, TrainingDivergedError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain
from visionsuite.official_weights import OfficialFormat

Batch = Sequence[torch.Tensor]


# ================================================================================== the architecture search
@dataclass(frozen=True)
class ArchitectureStep:
    """How the architecture parameters are updated (DARTS Alg. 1, step 1): the config node ``model.arch_step``.

    Attributes:
        gradient: ``first_order`` (DARTS V1), ``second_order`` (unrolled, DARTS V2) or ``amended``
            (Amended-DARTS); see :mod:`networks.nas.arch_gradients`.
        eta: the Amended-DARTS scale of the ``H^-1 ~ eta * H`` replacement (``amended`` only).
        warmup_epochs: epochs that train only the weights before alpha is first updated.
        gradient_clip_val: norm clipping of the architecture gradients before the step (0 or None: off, as in
            DARTS; the official P-DARTS code clips them at 5).
    """

    gradient: str = "first_order"
    eta: float = 0.1
    warmup_epochs: int = 0
    gradient_clip_val: float | None = None

    def __post_init__(self) -> None:
        if self.gradient not in ARCH_GRADIENTS:
            raise ValueError(f"gradient={self.gradient!r} is not an architecture-gradient mode; use one of "
                             f"{', '.join(ARCH_GRADIENTS)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) or not self.eta >= 0:
            raise ValueError(f"eta={self.eta!r}: the Amended-DARTS scale must be a number >= 0")
        _check_count(self.warmup_epochs, "warmup_epochs")
        _check_clip(self.gradient_clip_val, "gradient_clip_val")


class ArchitectureSearch(SuiteModule):
    """DARTS-family architecture search on an injected :class:`~networks.nas.search_space.SearchNetwork`.

    Args:
        net: the search network (the search space: candidate operations, PC-DARTS partial channels and edge
            normalisation, stem); built from ``model.net``.
        num_classes: classes of the dataset (the network's ``num_classes`` interpolates it).
        arch_step: how alpha is updated (:class:`ArchitectureStep`; first order, from the first epoch, when None).
        weight_optimizer: partial optimizer of the weights (SGD in DARTS).
        arch_optimizer: partial optimizer of the architecture parameters (Adam in DARTS).
        scheduler: partial learning-rate scheduler of the weight optimizer, stepped once per epoch.
        gradient_clip_val: norm clipping of the weight gradients (0 or None: off).
        progressive: P-DARTS stage settings ``{stage, layers, drop_ops, skip_dropout, max_skip_connect}`` (None: a
            single-stage search); the network must have the stage's ``layers[stage - 1]`` cells. See
            :func:`~networks.nas.progressive.stage_plan`.
        experiment: name recorded in ``genotype.json`` (the config sets ``${task_name}``).
        draw_every_n_epochs: draw the heat map and cell diagrams every n epochs (0: only at the end);
            ``genotype.txt`` is written every epoch.
        channels_last: keep weights and images in the channels-last memory format (results equal up to
            rounding; faster: PyTorch's NCHW depthwise-convolution kernels are slow on CPU and GPU, and so
            is its NCHW BatchNorm without affine parameters on GPU; see benchmarks/search_kernels.py).
        compile: ``false`` (eager) or a ``torch.compile`` mode for the search network's forward
            (``reduce-overhead`` and ``cudagraphs`` replay CUDA graphs and are refused on CPU); see
            :mod:`networks.nas.compiled_forward`.
    """

    def __init__(
        self,
        net: SearchNetwork,
        num_classes: int = 10,
        arch_step: ArchitectureStep | None = None,
        weight_optimizer: OptimizerFactory | None = None,
        arch_optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        gradient_clip_val: float | None = 5.0,
        progressive: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        draw_every_n_epochs: int = 1,
        channels_last: bool = True,
        compile: Any = False,
    ) -> None:
        super().__init__(weight_optimizer, scheduler, "epoch", config_name="conf/model/darts_search.yaml")
        _check_clip(gradient_clip_val, "gradient_clip_val")
        _check_count(draw_every_n_epochs, "draw_every_n_epochs")
        if num_classes != net.num_classes:
            raise ValueError(f"num_classes={num_classes} but the search network has {net.num_classes} classes "
                             "(its num_classes interpolates the module's)")
        progressive = plain(progressive)  # plain values in the hparams: checkpoints hold plain Python data only
        self.arch_step = arch_step or ArchitectureStep()
        self.compile_setting = normalize_compile(compile)
        self.plan = _stage_plan(progressive, net)
        self.arch_gradient = build_arch_gradient(self.arch_step.gradient, eta=self.arch_step.eta)
        self.save_hyperparameters(ignore=["net", "arch_step", "weight_optimizer", "arch_optimizer", "scheduler"])
        self.automatic_optimization = False
        self.net = net
        # The hparams (and so the checkpoint) record the architecture step, the operations actually searched and
        # the network's depth.
        self.hparams["arch_step"] = dataclasses.asdict(self.arch_step)
        self.hparams["candidate_ops"] = self.candidate_ops_lists()
        self.hparams["layers"] = net.layers
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._compiled_skip_dropout = 0.0  # the P-DARTS rate the compiled forward was traced with
        self.net.to(memory_format=self.memory_format)
        self.arch_optimizer_factory = arch_optimizer
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")

    #: What a chain's summary shows of a search phase.
    headline_artifacts = ("genotype", "normal_cell", "reduction_cell", "arch_weights")

    #: Parameter layout of the checkpoints (``visionsuite.checkpoint_files``): a checkpoint of another format
    #: stops with one message instead of a state-dict key mismatch.
    CHECKPOINT_FORMAT = 2
    CHECKPOINT_FORMAT_CHANGES = {
        2: "the pooling candidates' BatchNorms moved from every edge (cells.N.edges.E.ops...) to one EdgeSource "
           "per cell state (cells.N.sources.S.pools...), commit c960328 of 2026-11-26",
    }

    # ------------------------------------------------------------------------------ basics
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))

    def genotype(self) -> Genotype:
        """The genotype derived from the current alphas (P-DARTS: at most ``max_skip_connect`` skips)."""
        try:
            return self.net.genotype(max_skip_connect=self.plan.max_skip_connect if self.plan else None)
        except ValueError as error:  # e.g. a node whose edges hold only `none`: no cell can be derived
            raise ConfigError(f"model.net.candidate_ops: {error}") from None

    def candidate_ops_lists(self) -> dict[str, list[list[str]]]:
        """The candidate operations of every edge, as plain lists."""
        return {cell: [list(ops) for ops in per_edge] for cell, per_edge in self.net.candidates.items()}

    def configure_callbacks(self) -> list[pl.Callback]:
        """The writer of the architecture snapshots, ``genotype.json``, diagrams and a stage's survivors."""
        return [ArchitectureWriter(self.hparams.draw_every_n_epochs, self.hparams.experiment)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plan is not None:
            checkpoint["progressive"] = self._stage_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved, current = checkpoint.get("progressive"), self._stage_state() if self.plan is not None else None
        if saved != current and (saved is not None or current is not None):
            raise ConfigError(
                "The checkpoint belongs to another search stage or candidate set: it holds "
                f"{_describe_stage(saved)}, this run is {_describe_stage(current)}. Resume a P-DARTS stage from "
                "its own checkpoints/last.ckpt (resume=<run dir> does)."
            )

    def _stage_state(self) -> dict[str, Any]:
        """What a checkpoint records of a P-DARTS stage: its number and the candidate operations searched."""
        return {"stage": self.plan.stage, "candidate_ops": self.candidate_ops_lists()}

    # ------------------------------------------------------------------------ optimisation
    def optimizer_parameters(self) -> list[torch.nn.Parameter]:
        """The weight optimizer updates the network weights; alpha has its own optimizer."""
        return self.net.weight_parameters()

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        if self.arch_optimizer_factory is None:
            raise ConfigError("model.weight_optimizer and model.arch_optimizer must both be set "
                              "(partial optimizers; see conf/model/darts_search.yaml).")
        return [self.arch_optimizer_factory(params=self.net.arch_parameters())]

    def on_fit_start(self) -> None:
        precision = str(self.trainer.precision)
        if precision.startswith("16"):
            raise ConfigError(
                f"trainer.precision={precision}: the architecture search takes gradients with torch.autograd.grad "
                "and finite differences, which float16 loss scaling does not cover; use trainer.precision=32 "
                "(the papers' setting) or bf16-mixed."
            )
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and not getattr(datamodule, "search_split", True):
            raise ConfigError("The architecture search needs the search split of the training set: set "
                              "data.search_split=true (weights train on one part, the architecture on the other).")
        try:
            self.arch_gradient.check_weight_optimizer(self.optimizers()[0])
        except ValueError as error:
            raise ConfigError(f"model.arch_step.gradient={self.arch_step.gradient} cannot use "
                              f"model.weight_optimizer: {error}.") from None
        try:
            check_device(self.compile_setting, self.device)
        except ValueError:
            raise ConfigError(f"model.compile={self.compile_setting}: CUDA graphs need a CUDA device, and this run is "
                              f"on {self.device.type}. Use trainer=gpu, or model.compile=false (eager) / default "
                              "(Inductor without graphs) here.") from None
        compile_forward(self.net, self.compile_setting)  # a new network per P-DARTS stage: compiled anew

    # ---------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        if self.plan is not None:  # P-DARTS: skip-connect dropout decayed during the stage (Sec. 3.3)
            rate = skip_dropout_rate(self.plan.skip_dropout, self.current_epoch, int(self.trainer.max_epochs or 1),
                                     self.arch_step.warmup_epochs)
            self.net.set_skip_dropout(rate)
            self.log("train/skip_dropout", rate, on_step=False, on_epoch=True)
            if rate != self._compiled_skip_dropout:  # a dynamic element of the compiled forward: recompile
                recompile_for_skip_dropout(self.net, self.compile_setting, rate)
                self._compiled_skip_dropout = rate

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        train_batch, val_batch = (self._formatted(part) for part in _split_search_batch(batch))
        weight_optimizer, arch_optimizer = self.optimizers()
        if self.current_epoch >= self.arch_step.warmup_epochs:
            self._architecture_step(train_batch, val_batch, weight_optimizer, arch_optimizer)
        return self._weight_step(train_batch, weight_optimizer)

    def _architecture_step(self, train_batch: Batch, val_batch: Batch, weight_optimizer: Any,
                           arch_optimizer: Any) -> None:
        """Alpha's update (DARTS Alg. 1, step 1) with the gradient of ``model.arch_step.gradient``."""
        result = self.arch_gradient(self.net, train_batch, val_batch, weight_optimizer.optimizer)
        if not math.isfinite(float(result.loss)) or not all(bool(torch.isfinite(g).all()) for g in result.gradients):
            raise TrainingDivergedError(
                f"The architecture gradient (model.arch_step.gradient={self.arch_step.gradient}) became NaN or "
                f"infinite at epoch {self.current_epoch}, step {self.global_step} (architecture loss "
                f"{float(result.loss)}). The search stopped before updating alpha; the last good checkpoint is "
                "checkpoints/last.ckpt in the run directory. Lower model.arch_optimizer.lr or "
                "model.weight_optimizer.lr, then resume with ckpt_path=<that file>."
            )
        for parameter, gradient in zip(self.net.arch_parameters(), result.gradients, strict=True):
            parameter.grad = gradient.to(parameter.dtype)
        if self.arch_step.gradient_clip_val:
            self.clip_gradients(arch_optimizer, gradient_clip_val=float(self.arch_step.gradient_clip_val),
                                gradient_clip_algorithm="norm")
        arch_optimizer.step()
        arch_optimizer.zero_grad(set_to_none=True)
        self.log("train/arch_loss", result.loss, on_step=False, on_epoch=True, batch_size=len(val_batch[1]))

    def _weight_step(self, train_batch: Batch, weight_optimizer: Any) -> torch.Tensor:
        """The weights' update (DARTS Alg. 1, step 2): alpha is a constant of this graph."""
        images, targets = train_batch[0], train_batch[1]
        logits = self.net(images, detach_arch=True)
        loss = F.cross_entropy(logits, targets)
        weights = self.net.weight_parameters()
        # One all-reduce for the gradients and the loss: a NaN on any process stops every process here.
        *gradients, mean_loss = average_across_processes([*torch.autograd.grad(loss, weights),
                                                          loss.detach().reshape(1)])
        ensure_finite(mean_loss, "weight training loss of the search", self.current_epoch, self.global_step)
        for parameter, gradient in zip(weights, gradients, strict=True):
            parameter.grad = gradient
        if self.hparams.gradient_clip_val:
            self.clip_gradients(weight_optimizer, gradient_clip_val=float(self.hparams.gradient_clip_val),
                                gradient_clip_algorithm="norm")
        weight_optimizer.step()
        weight_optimizer.zero_grad(set_to_none=True)
        log_training_step(self, loss, logits, targets, self.train_metrics)
        return loss.detach()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.step_schedulers_manually(batch_idx)

    # -------------------------------------------------------------------------- evaluation
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        images, targets = self._formatted(batch)
        log_evaluation_step(self, "val", self.net(images), targets, self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        images, targets = self._formatted(batch)
        log_evaluation_step(self, "test", self.net(images), targets, self.test_metrics)

    def _formatted(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[0].contiguous(memory_format=self.memory_format), batch[1]

    def size_report(self) -> dict[str, float]:
        """Weights of the search network in millions (DARTS: ~1.93M at C=16, 8 cells) and alpha entries."""
        return {
            "params_m": round(sum(p.numel() for p in self.net.weight_parameters()) / 1e6, 4),
            "arch_params": sum(p.numel() for p in self.net.arch_parameters()),
        }


def _check_count(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}={value!r}: must be an integer >= 0")


def _check_clip(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
        raise ValueError(f"{name}={value!r}: must be a number >= 0 (0 or null: no clipping)")


def _stage_plan(progressive: Any, net: SearchNetwork) -> StagePlan | None:
    """The P-DARTS stage of ``progressive`` (None: a single-stage search), checked against the network's depth."""
    if progressive is None:
        return None
    if not isinstance(progressive, Mapping):
        raise ValueError(f"progressive must be a mapping (stage, layers, drop_ops, skip_dropout, max_skip_connect) "
                         f"or null, got {progressive!r}")
    plan = stage_plan(progressive, min(len(per_edge[0]) for per_edge in net.candidates.values()))
    if net.layers != plan.layers:
        raise ValueError(f"progressive: stage {plan.stage} has {plan.layers} cells (progressive.layers"
                         f"[{plan.stage - 1}]) but the search network has {net.layers}; leave model.net.layers to "
                         "the stage's interpolation (conf/experiment/pdarts/stage.yaml)")
    return plan


def _describe_stage(state: Mapping[str, Any] | None) -> str:
    if state is None:
        return "no P-DARTS stage"
    sizes = sorted({len(ops) for per_edge in state["candidate_ops"].values() for ops in per_edge})
    return f"stage {state['stage']} with {'/'.join(map(str, sizes))} candidates per edge"


def _split_search_batch(batch: Any) -> tuple[Batch, Batch]:
    if not isinstance(batch, Mapping) or "weights" not in batch or "arch" not in batch:
        raise ConfigError("The architecture search expects {'weights': batch, 'arch': batch} training batches: "
                          "set data.search_split=true.")
    return batch["weights"], batch["arch"]


# ====================================================================== training a found cell (a genotype)
class GenotypeClassifier(SuiteModule):
    """Trains an evaluation network built from a genotype (:class:`~networks.nas.networks.NetworkCIFAR` or
    :class:`~networks.nas.networks.NetworkImageNet`).

    Args:
        net: the evaluation network (``model.net``: its genotype, a published name or a ``genotype.json``, C,
            cells, auxiliary head).
        num_classes: classes of the dataset (the network's ``num_classes`` interpolates it).
        auxiliary_weight: weight of the auxiliary-head loss (the network builds the head when it is above 0).
        drop_path_prob: final drop-path rate (reached at the last epoch).
        label_smoothing: cross-entropy label smoothing (0.1 on ImageNet).
        input_size: image side used by ``mode=summary`` to count multiply-adds.
        optimizer: a partial optimizer (bound to the parameters here).
        scheduler: a partial learning-rate scheduler, stepped once per epoch.
        scheduler_interval: ``epoch`` (the papers' schedules) or ``step``.
    """

    def __init__(
        self,
        net: NetworkCIFAR | NetworkImageNet,
        num_classes: int,
        auxiliary_weight: float = 0.4,
        drop_path_prob: float = 0.3,
        label_smoothing: float = 0.0,
        input_size: int = 32,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/nas_train.yaml")
        if not 0.0 <= drop_path_prob < 1.0:
            raise ValueError(f"drop_path_prob={drop_path_prob}: must be in [0, 1)")
        if num_classes != net.num_classes:
            raise ValueError(f"num_classes={num_classes} but the network has {net.num_classes} classes (its "
                             "num_classes interpolates the module's)")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.hparams["genotype"] = net.genotype.to_dict()  # the checkpoint carries the architecture itself
        self.net = net
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits, _ = self.net(images)
        return logits

    def on_train_epoch_start(self) -> None:
        # Drop-path rate ramped linearly with the epoch, as in the official training scripts.
        max_epochs = max(self.trainer.max_epochs or 1, 1)
        self.net.drop_path_prob = self.hparams.drop_path_prob * self.current_epoch / max_epochs

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        try:
            logits, aux_logits = self.net(images)
        except ValueError as error:
            if str(error).startswith("auxiliary="):  # the auxiliary head's input-size check names its argument
                raise ConfigError(f"model.net.{error} (or model.auxiliary_weight=0).") from None
            raise
        loss = self._loss(logits, targets)
        if aux_logits is not None:
            loss = loss + self.hparams.auxiliary_weight * self._loss(aux_logits, targets)
        ensure_finite(loss, "training loss", self.current_epoch, self.global_step)
        log_training_step(self, loss, logits, targets, self.train_metrics)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metrics: nn.Module) -> None:
        images, targets = batch
        log_evaluation_step(self, stage, self(images), targets, metrics)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)

    def official_format(self) -> OfficialFormat:
        """The authors' released evaluation networks (DARTS ``cnn/model.py``, PC-DARTS and P-DARTS ``model.py``):
        ``ckpt_path=<cifar10_model.pt | imagenet_model.pt>`` with this experiment's genotype."""
        return OfficialFormat(self.net, _OfficialConverter(self.net), official_description(self.net))

    def example_input(self) -> torch.Tensor:
        size = int(self.hparams.input_size)
        return torch.zeros(1, self.net.in_channels, size, size)

    def size_report(self) -> dict[str, float]:
        """Parameters (auxiliary head excluded, as the papers count) and multiply-adds of one image."""
        example = self.example_input()
        size = int(example.shape[-1])
        return {
            "params_m": round(count_parameters_m(self.net, exclude_auxiliary=True), 4),
            "params_with_auxiliary_m": round(count_parameters_m(self.net, exclude_auxiliary=False), 4),
            "madds_m": round(count_multiply_adds(self.net, example) / 1e6, 2),
            "input_size": size,
        }


class _OfficialConverter(OfficialKeyConverter):
    """The official key converter, with advice naming the config keys and experiments that fit a file whose keys and
    the network's differ in a known way (another network kind, another genotype, an auxiliary head or its
    BatchNorm on one side only, a suite checkpoint)."""

    def advise(self, key: str) -> str | None:
        """How to fix a conversion whose first unmatched key (an official key without a place, or a network entry
        left empty) is ``key``; ``None`` when the layouts differ in no known way."""
        network, head = self.network, self.network.auxiliary_head
        network_side = key in network.state_dict()
        if key.startswith("net."):
            return ("The file is a checkpoint of this suite (its weights are under `net.`), not an official one: give "
                    "it with ckpt_format=auto (the default) or ckpt_format=lightning.")
        if isinstance(network, NetworkImageNet) and key.startswith("stem."):
            return "The file holds the CIFAR network (a `stem.` key): use experiment=nas_train_cifar10 (or cifar100)."
        if isinstance(network, NetworkCIFAR) and key.startswith(("stem0.", "stem1.")):
            return "The file holds the ImageNet network (a `stem0.` key): use experiment=nas_train_imagenet."
        if key.startswith("auxiliary_head.features.6.") and isinstance(network, NetworkImageNet) and head is not None:
            if network_side:
                return ("The file's ImageNet auxiliary head has no BatchNorm2d(768) after its 2x2 convolution (DARTS's "
                        "and PC-DARTS's model.py): set model.net.auxiliary_batchnorm=false.")
            return (f"`{key}` belongs to the BatchNorm2d(768) of P-DARTS's ImageNet auxiliary head (chenxin061/pdarts "
                    "model.py), which this network does not have: set model.net.auxiliary_batchnorm=true.")
        if key.startswith("auxiliary_head."):
            if head is None:
                return ("The file has an auxiliary head and this network none: set model.auxiliary_weight=0.4 (the "
                        "head is built; evaluation does not use it).")
            if network_side:
                return "The file has no auxiliary head: set model.auxiliary_weight=0."
        if key.startswith("cells."):
            return ("The file's cells hold other operations or another number of cells: check model.net.genotype (the "
                    "file's architecture) and model.net.layers.")
        return None


__all__ = ["ArchitectureSearch", "ArchitectureStep", "GenotypeClassifier"]
