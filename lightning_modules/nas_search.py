"""Differentiable architecture search (DARTS and the gradient modes built on it) as a LightningModule.

DARTS (arXiv:1806.09055, Alg. 1): every iteration first updates the architecture parameters alpha on a
batch of the architecture split, then the network weights on a batch of the weight split. The way
alpha's gradient is computed is a separate strategy (``model.arch_gradient``: ``first_order``,
``second_order`` of DARTS, ``amended`` of Amended-DARTS arXiv:1910.11831; ``networks.nas.arch_gradients``).

Manual optimization (two optimizers, alternating): the weight step computes only weight gradients
(alpha is a constant of its graph) and the architecture step only what its strategy needs. Gradients are
taken with ``torch.autograd.grad`` and averaged over processes explicitly, so a DDP run keeps identical
parameters on every rank whatever the strategy's ``find_unused_parameters`` setting (DDP never
all-reduces ``autograd.grad`` results, and alpha is unused in the weight step). Gradient clipping of the
weights goes through ``self.clip_gradients``; the weight scheduler is stepped after the last training
batch of each epoch (before validation and the end-of-epoch checkpoint, like Lightning's automatic
epoch schedulers), so a resumed run continues with the right learning rate.

Files and pictures (per-epoch architecture snapshots, ``genotype.json``, diagrams) are written by the
:class:`~lightning_modules.search_outputs.ArchitectureWriter` callback this module declares
(``configure_callbacks``); the P-DARTS stage lifecycle is :class:`~lightning_modules.pdarts_stage.ProgressiveStage`.

PC-DARTS (``partial_channel_k``, ``edge_normalization``) and the ImageNet stem are options of the search
space, so they combine with every ``arch_gradient``. P-DARTS (``progressive``, arXiv:1904.12760) makes the
run one stage of a progressive search (``networks.nas.progressive``): the stage's depth and skip-connect
dropout come from the stage lists, ``candidate_ops`` may be the previous stage's ``candidates.json``, and
at the end a non-final stage drops the weakest candidates of every edge and writes ``candidates.json``
(plus ``surviving_ops.png`` / ``candidates.txt``; artifact ``candidates``); the genotype keeps at most
``max_skip_connect`` skip-connects in the normal cell. The checkpoint carries the stage and the
candidate operations (``checkpoint["progressive"]``); resuming it into another stage is an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from lightning_modules.pdarts_stage import ProgressiveStage, candidate_ops_lists
from lightning_modules.search_outputs import ArchitectureWriter
from metrics.classification import accuracy_metrics, log_evaluation_step, log_training_step
from networks.nas.arch_gradients import ARCH_GRADIENTS, average_across_processes, build_arch_gradient
from networks.nas.compiled_forward import (
    check_device,
    compile_forward,
    normalize_compile,
    recompile_for_skip_dropout,
)
from networks.nas.genotypes import Genotype
from networks.nas.progressive import load_candidates_json
from networks.nas.search_space import SearchNetwork
from visionsuite.errors import ConfigError, TrainingDivergedError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain

Batch = Sequence[torch.Tensor]


class ArchitectureSearch(SuiteModule):
    """DARTS-family architecture search on a :class:`~networks.nas.search_space.SearchNetwork`.

    Args:
        num_classes: classes of the dataset.
        init_channels: C of the search network (16 in DARTS).
        layers: cells of the search network (8 in DARTS).
        in_channels: image channels.
        nodes: intermediate nodes per cell (4).
        multiplier: nodes concatenated into a cell's output (4).
        stem_multiplier: stem channels = ``stem_multiplier * C`` (3).
        candidate_ops: candidate operations per edge (None: all eight DARTS primitives); see
            :func:`~networks.nas.search_space.normalize_candidate_ops`; or the path of a ``candidates.json``
            written by an earlier P-DARTS stage.
        partial_channel_k: PC-DARTS K (1: off; CIFAR 4, ImageNet 2).
        edge_normalization: PC-DARTS edge normalisation (beta, optimised with alpha).
        stem: ``cifar`` or ``imagenet`` (three stride-2 convs, the PC-DARTS ImageNet search network).
        progressive: P-DARTS stage settings ``{stage, layers, drop_ops, skip_dropout, max_skip_connect}``
            (None: a single-stage search); when set, the network has ``layers[stage - 1]`` cells and
            ``layers`` is not used. See :func:`~networks.nas.progressive.stage_plan`.
        arch_gradient: ``first_order``, ``second_order`` or ``amended``.
        eta: the Amended-DARTS scale (``amended`` only).
        arch_warmup_epochs: epochs that train only the weights before alpha is updated.
        gradient_clip_val: norm clipping of the weight gradients (0 or None: off).
        arch_gradient_clip_val: norm clipping of the architecture gradients before the architecture step
            (0 or None: off, as in DARTS; the official P-DARTS code clips them at 5).
        weight_optimizer: partial optimizer of the weights (SGD in DARTS).
        arch_optimizer: partial optimizer of alpha (Adam in DARTS).
        scheduler: partial learning-rate scheduler of the weight optimizer, stepped once per epoch.
        experiment: name recorded in ``genotype.json`` (the config sets ``${task_name}``).
        draw_every_n_epochs: draw the heat map and cell diagrams every n epochs (0: only at the end);
            ``genotype.txt`` is written every epoch.
        channels_last: keep weights and images in the channels-last memory format (results equal up to
            rounding; faster: PyTorch's NCHW depthwise-convolution kernels are slow on CPU and GPU, and so
            is its NCHW BatchNorm without affine parameters on GPU; see benchmarks/search_kernels.py).
        compile: ``false`` (eager) or a ``torch.compile`` mode for the search network's forward (issue 20;
            ``reduce-overhead`` replays CUDA graphs and is refused on CPU); see
            :mod:`networks.nas.compiled_forward`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        init_channels: int = 16,
        layers: int = 8,
        in_channels: int = 3,
        nodes: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
        candidate_ops: Any = None,
        arch_gradient: str = "first_order",
        eta: float = 0.1,
        arch_warmup_epochs: int = 0,
        gradient_clip_val: float | None = 5.0,
        arch_gradient_clip_val: float | None = None,
        weight_optimizer: OptimizerFactory | None = None,
        arch_optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        experiment: str | None = None,
        draw_every_n_epochs: int = 1,
        channels_last: bool = True,
        partial_channel_k: int = 1,
        edge_normalization: bool = False,
        stem: str = "cifar",
        progressive: Mapping[str, Any] | None = None,
        compile: Any = False,
    ) -> None:
        super().__init__(weight_optimizer, scheduler, "epoch", config_name="conf/model/darts_search.yaml")
        candidate_ops, progressive = plain(candidate_ops), plain(progressive)
        if isinstance(candidate_ops, (str, Path)):
            candidate_ops = load_candidates_json(candidate_ops)
        _check_settings(arch_warmup_epochs, gradient_clip_val, arch_gradient_clip_val, draw_every_n_epochs)
        self.compile_setting = normalize_compile(compile)
        self.stage = ProgressiveStage.from_config(progressive, candidate_ops, nodes, arch_warmup_epochs)
        if self.stage is not None:
            layers = self.stage.layers
        self.arch_gradient = build_arch_gradient(arch_gradient, eta=eta)
        self.save_hyperparameters(ignore=["weight_optimizer", "arch_optimizer", "scheduler"])
        self.automatic_optimization = False
        self.net = SearchNetwork(init_channels, num_classes, layers, nodes=nodes, multiplier=multiplier,
                                 stem_multiplier=stem_multiplier, in_channels=in_channels,
                                 candidate_ops=candidate_ops, partial_channel_k=partial_channel_k,
                                 edge_normalization=edge_normalization, stem=stem)
        # The hparams (and so the checkpoint) carry the operations actually searched and the stage's depth.
        self.hparams["candidate_ops"] = self.candidate_ops_lists()
        self.hparams["layers"] = layers
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
        return self.net.genotype(max_skip_connect=self.stage.max_skip_connect if self.stage else None)

    @property
    def plan(self) -> Any:
        """The P-DARTS stage plan (None for a single-stage search)."""
        return self.stage.plan if self.stage is not None else None

    def candidate_ops_lists(self) -> dict[str, list[list[str]]]:
        """The candidate operations of every edge, as plain lists."""
        return candidate_ops_lists(self.net)

    def configure_callbacks(self) -> list[pl.Callback]:
        """The writer of the architecture snapshots, ``genotype.json`` and diagrams."""
        return [ArchitectureWriter(self.hparams.draw_every_n_epochs, self.hparams.experiment)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.stage is not None:
            checkpoint["progressive"] = self.stage.state(self.net)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        current = self.stage.state(self.net) if self.stage is not None else None
        ProgressiveStage.check_resumable(checkpoint.get("progressive"), current)

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
        self.arch_gradient.check_weight_optimizer(self.optimizers()[0])
        check_device(self.compile_setting, self.device)
        compile_forward(self.net, self.compile_setting)  # a new network per P-DARTS stage: compiled anew

    # ---------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        if self.stage is not None:  # P-DARTS: skip-connect dropout decayed during the stage
            rate = self.stage.start_epoch(self.net, self.current_epoch, int(self.trainer.max_epochs or 1))
            self.log("train/skip_dropout", rate, on_step=False, on_epoch=True)
            if rate != self._compiled_skip_dropout:  # a dynamic element of the compiled forward: recompile
                recompile_for_skip_dropout(self.net, self.compile_setting, rate)
                self._compiled_skip_dropout = rate

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        train_batch, val_batch = (self._formatted(part) for part in _split_search_batch(batch))
        weight_optimizer, arch_optimizer = self.optimizers()
        if self.current_epoch >= self.hparams.arch_warmup_epochs:
            self._architecture_step(train_batch, val_batch, weight_optimizer, arch_optimizer)
        return self._weight_step(train_batch, weight_optimizer)

    def _architecture_step(self, train_batch: Batch, val_batch: Batch, weight_optimizer: Any,
                           arch_optimizer: Any) -> None:
        """Alpha's update (DARTS Alg. 1, step 1) with the gradient of ``model.arch_gradient``."""
        result = self.arch_gradient(self.net, train_batch, val_batch, weight_optimizer.optimizer)
        if not math.isfinite(float(result.loss)) or not all(bool(torch.isfinite(g).all()) for g in result.gradients):
            raise TrainingDivergedError(
                f"The architecture gradient (model.arch_gradient={self.hparams.arch_gradient}) became NaN or "
                f"infinite at epoch {self.current_epoch}, step {self.global_step} (architecture loss "
                f"{float(result.loss)}). The search stopped before updating alpha; the last good checkpoint is "
                "checkpoints/last.ckpt in the run directory. Lower model.arch_optimizer.lr or "
                "model.weight_optimizer.lr, then resume with ckpt_path=<that file>."
            )
        for parameter, gradient in zip(self.net.arch_parameters(), result.gradients, strict=True):
            parameter.grad = gradient.to(parameter.dtype)
        if self.hparams.arch_gradient_clip_val:
            self.clip_gradients(arch_optimizer, gradient_clip_val=float(self.hparams.arch_gradient_clip_val),
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


def _check_settings(arch_warmup_epochs: Any, gradient_clip_val: Any, arch_gradient_clip_val: Any,
                    draw_every_n_epochs: Any) -> None:
    """One clear error per bad number of ``model.*``."""
    if isinstance(arch_warmup_epochs, bool) or not isinstance(arch_warmup_epochs, int) or arch_warmup_epochs < 0:
        raise ConfigError(f"model.arch_warmup_epochs={arch_warmup_epochs!r}: must be an integer >= 0.")
    for key, value in (("gradient_clip_val", gradient_clip_val), ("arch_gradient_clip_val", arch_gradient_clip_val)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
            raise ConfigError(f"model.{key}={value!r}: must be a number >= 0 (0 or null: no clipping).")
    if isinstance(draw_every_n_epochs, bool) or not isinstance(draw_every_n_epochs, int) or draw_every_n_epochs < 0:
        raise ConfigError(f"model.draw_every_n_epochs={draw_every_n_epochs!r}: must be an integer >= 0.")


def _split_search_batch(batch: Any) -> tuple[Batch, Batch]:
    if not isinstance(batch, Mapping) or "weights" not in batch or "arch" not in batch:
        raise ConfigError("The architecture search expects {'weights': batch, 'arch': batch} training batches: "
                          "set data.search_split=true.")
    return batch["weights"], batch["arch"]


__all__ = ["ARCH_GRADIENTS", "ArchitectureSearch"]
