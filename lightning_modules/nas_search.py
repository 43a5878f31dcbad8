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

Outputs in the run directory (``trainer.default_root_dir``):

* every epoch: ``architecture/epoch_XXX/`` with ``genotype.txt``, ``arch_weights.png`` (heat map of
  softmax(alpha)), ``normal_cell.png`` and ``reduction_cell.png``; the same images and text go to the
  loggers that take images (W&B ``log_image``, TensorBoard ``add_image``);
* at the end of fit: ``genotype.json`` (format of ``networks.nas.genotypes``, with metadata), the
  final ``genotype.txt`` and diagrams; ``self.artifacts`` names them for ``result.json`` and for later
  phases (``inputs: {model.genotype: search.genotype}``).

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

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.nn import functional as F

from lightning_modules.classification import accuracy_metrics, ensure_finite
from networks.nas.arch_gradients import ARCH_GRADIENTS, average_across_processes, build_arch_gradient
from networks.nas.genotypes import Genotype, save_genotype_json
from networks.nas.progressive import (
    StagePlan,
    drop_weakest,
    load_candidates_json,
    save_candidates_json,
    skip_dropout_rate,
    stage_plan,
)
from networks.nas.search_space import SearchNetwork, edge_inputs, normalize_candidate_ops
from networks.nas.visualize import genotype_text, plot_arch_weights, plot_cell, state_name
from visionsuite.errors import ConfigError, TrainingDivergedError

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]
Batch = Sequence[torch.Tensor]

ARCHITECTURE_DIR = "architecture"
GENOTYPE_FILE = "genotype.json"
CANDIDATES_FILE = "candidates.json"
IMAGE_FILES = {"arch_weights": "arch_weights.png", "normal_cell": "normal_cell.png",
               "reduction_cell": "reduction_cell.png"}


class ArchitectureSearch(pl.LightningModule):
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
    ) -> None:
        super().__init__()
        if isinstance(candidate_ops, (DictConfig, ListConfig)):
            candidate_ops = OmegaConf.to_container(candidate_ops, resolve=True)
        if isinstance(progressive, DictConfig):
            progressive = OmegaConf.to_container(progressive, resolve=True)
        if isinstance(candidate_ops, (str, Path)):
            candidate_ops = load_candidates_json(candidate_ops)
        self.plan: StagePlan | None = None
        if progressive is not None:
            if not isinstance(progressive, Mapping):
                raise ConfigError(f"model.progressive must be a mapping (stage, layers, drop_ops, skip_dropout, "
                                  f"max_skip_connect) or null, got {progressive!r}.")
            normalized = normalize_candidate_ops(candidate_ops, nodes)
            self.plan = stage_plan(progressive, min(len(normalized[cell][0]) for cell in normalized))
            layers = self.plan.layers
        if isinstance(arch_warmup_epochs, bool) or not isinstance(arch_warmup_epochs, int) or arch_warmup_epochs < 0:
            raise ConfigError(f"model.arch_warmup_epochs={arch_warmup_epochs!r}: must be an integer >= 0.")
        for key, value in (("gradient_clip_val", gradient_clip_val), ("arch_gradient_clip_val", arch_gradient_clip_val)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
                raise ConfigError(f"model.{key}={value!r}: must be a number >= 0 (0 or null: no clipping).")
        if isinstance(draw_every_n_epochs, bool) or not isinstance(draw_every_n_epochs, int) or draw_every_n_epochs < 0:
            raise ConfigError(f"model.draw_every_n_epochs={draw_every_n_epochs!r}: must be an integer >= 0.")
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
        self.net.to(memory_format=self.memory_format)
        self.weight_optimizer_factory = weight_optimizer
        self.arch_optimizer_factory = arch_optimizer
        self.scheduler_factory = scheduler
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")
        self.artifacts: dict[str, str] = {}

    # ------------------------------------------------------------------------------ basics
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))

    def genotype(self) -> Genotype:
        """The genotype derived from the current alphas (P-DARTS: at most ``max_skip_connect`` skips)."""
        return self.net.genotype(max_skip_connect=self.plan.max_skip_connect if self.plan else None)

    def candidate_ops_lists(self) -> dict[str, list[list[str]]]:
        """The candidate operations of every edge, as plain lists."""
        return {cell: [list(ops) for ops in per_edge] for cell, per_edge in self.net.candidates.items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plan is not None:
            checkpoint["progressive"] = {"stage": self.plan.stage, "candidate_ops": self.candidate_ops_lists()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("progressive")
        current = None if self.plan is None else {"stage": self.plan.stage, "candidate_ops": self.candidate_ops_lists()}
        if saved != current and (saved is not None or current is not None):
            raise ConfigError(
                "The checkpoint belongs to another search stage or candidate set: it holds "
                f"{_describe_stage(saved)}, this run is {_describe_stage(current)}. Resume a P-DARTS stage from "
                "its own checkpoints/last.ckpt (resume=<run dir> does)."
            )

    def configure_optimizers(self) -> Any:
        if self.weight_optimizer_factory is None or self.arch_optimizer_factory is None:
            raise ConfigError("model.weight_optimizer and model.arch_optimizer must both be set "
                              "(partial optimizers; see conf/model/darts_search.yaml).")
        weight_optimizer = self.weight_optimizer_factory(params=self.net.weight_parameters())
        arch_optimizer = self.arch_optimizer_factory(params=self.net.arch_parameters())
        if self.scheduler_factory is None:
            return [weight_optimizer, arch_optimizer]
        scheduler = self.scheduler_factory(optimizer=weight_optimizer)
        return [weight_optimizer, arch_optimizer], [{"scheduler": scheduler, "interval": "epoch"}]

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

    # ---------------------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        if self.plan is not None:  # P-DARTS: skip-connect dropout decayed during the stage
            rate = skip_dropout_rate(self.plan.skip_dropout, self.current_epoch, int(self.trainer.max_epochs or 1),
                                     int(self.hparams.arch_warmup_epochs))
            self.net.set_skip_dropout(rate)
            self.log("train/skip_dropout", rate, on_step=False, on_epoch=True)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        train_batch, val_batch = (self._formatted(part) for part in _split_search_batch(batch))
        weight_optimizer, arch_optimizer = self.optimizers()
        if self.current_epoch >= self.hparams.arch_warmup_epochs:
            self._architecture_step(train_batch, val_batch, weight_optimizer, arch_optimizer)
        return self._weight_step(train_batch, weight_optimizer)

    def _architecture_step(self, train_batch: Batch, val_batch: Batch, weight_optimizer: Any,
                           arch_optimizer: Any) -> None:
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
        self.train_metrics.update(logits.detach(), targets)
        self.log("train/loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=True, batch_size=len(targets))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        return loss.detach()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Epoch schedulers step after the epoch's last batch, before validation and the checkpoint.
        if batch_idx + 1 >= self.trainer.num_training_batches:
            schedulers = self.lr_schedulers()
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
                scheduler.step()

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch
        every = self.hparams.draw_every_n_epochs
        last = self.trainer.max_epochs is not None and epoch + 1 >= self.trainer.max_epochs
        draw = bool(every) and ((epoch + 1) % every == 0 or last)
        genotype = self.genotype()
        if self.trainer.is_global_zero:
            log.info("Epoch %d genotype:\n%s", epoch, genotype_text(genotype))
            folder = Path(self.trainer.default_root_dir) / ARCHITECTURE_DIR / f"epoch_{epoch:03d}"
            files = write_search_pictures(self.net, genotype, folder, f"epoch {epoch}", draw=draw)
            publish_to_loggers(self.loggers, files, genotype_text(genotype), self.global_step)

    # -------------------------------------------------------------------------- evaluation
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: Batch, stage: str, metrics: Any) -> None:
        images, targets = self._formatted(batch)
        logits = self.net(images)
        metrics.update(logits, targets)
        self.log(f"{stage}/loss", F.cross_entropy(logits, targets), prog_bar=stage == "val",
                 batch_size=len(targets), sync_dist=True)
        self.log_dict(metrics, prog_bar=stage == "val")

    def _formatted(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return batch[0].contiguous(memory_format=self.memory_format), batch[1]

    # ------------------------------------------------------------------------------ outputs
    def on_fit_end(self) -> None:
        """Write ``genotype.json`` and the final pictures (rank 0), then name them in ``self.artifacts``."""
        run_dir = Path(self.trainer.default_root_dir)
        genotype = self.genotype()
        if self.trainer.is_global_zero:
            files = write_search_pictures(self.net, genotype, run_dir, "final architecture", draw=True)
            weights = self.net.arch_weights()
            save_genotype_json(
                genotype, run_dir / GENOTYPE_FILE,
                experiment=self.hparams.experiment,
                epochs_trained=int(self.current_epoch),
                arch_gradient=self.hparams.arch_gradient,
                eta=self.hparams.eta if self.hparams.arch_gradient == "amended" else None,
                arch_weights={cell: value.cpu().numpy().round(6) for cell, value in weights.items()},
                candidate_ops=self.candidate_ops_lists(),
                partial_channel_k=self.hparams.partial_channel_k,
                edge_weights=({cell: value.cpu().numpy().round(6) for cell, value in self.net.edge_weights().items()}
                              if self.net.edge_normalization else None),
                stage=self.plan.stage if self.plan else None,
                max_skip_connect=self.plan.max_skip_connect if self.plan else None,
            )
            log.info("Search finished: %s\n%s", run_dir / GENOTYPE_FILE, genotype_text(genotype))
        else:
            files = {name: run_dir / file for name, file in IMAGE_FILES.items()}
            files["genotype_text"] = run_dir / "genotype.txt"
        if self.plan is not None and not self.plan.is_last:
            files.update(self._write_survivors(run_dir))
        self.trainer.strategy.barrier("genotype_written")
        self.artifacts = {"genotype": str(run_dir / GENOTYPE_FILE), **{name: str(path) for name, path in files.items()}}

    def _write_survivors(self, run_dir: Path) -> dict[str, Path]:
        """P-DARTS: drop the weakest candidates of every edge; write, log and draw the survivors (rank 0)."""
        weights = self.net.arch_weights()
        survivors = {cell: drop_weakest(weights[cell], self.net.candidates[cell], self.plan.drop_ops)
                     for cell in self.net.candidates}
        files = {"candidates": run_dir / CANDIDATES_FILE, "surviving_ops": run_dir / "surviving_ops.png",
                 "candidates_text": run_dir / "candidates.txt"}
        if not self.trainer.is_global_zero:
            return files
        save_candidates_json(files["candidates"], survivors, stage=self.plan.stage, experiment=self.hparams.experiment,
                             dropped_per_edge=self.plan.drop_ops)
        text = candidates_text(survivors, self.net.nodes)
        files["candidates_text"].write_text(text, encoding="utf-8")
        kept = {cell: _kept_weights(weights[cell], self.net.candidates[cell], survivors[cell]) for cell in survivors}
        plot_arch_weights(kept, survivors, files["surviving_ops"], nodes=self.net.nodes,
                          title=f"stage {self.plan.stage}: surviving operations (weights at the end of the stage)")
        log.info("Stage %d: %d candidates per edge survive:\n%s", self.plan.stage,
                 len(survivors["normal"][0]), text)
        publish_to_loggers(self.loggers, {"surviving_ops": files["surviving_ops"]}, text, self.global_step)
        return files

    def size_report(self) -> dict[str, float]:
        """Weights of the search network in millions (DARTS: ~1.93M at C=16, 8 cells) and alpha entries."""
        return {
            "params_m": round(sum(p.numel() for p in self.net.weight_parameters()) / 1e6, 4),
            "arch_params": sum(p.numel() for p in self.net.arch_parameters()),
        }


def _describe_stage(state: Mapping[str, Any] | None) -> str:
    if state is None:
        return "no P-DARTS stage"
    sizes = sorted({len(ops) for per_edge in state["candidate_ops"].values() for ops in per_edge})
    return f"stage {state['stage']} with {'/'.join(map(str, sizes))} candidates per edge"


def _kept_weights(weights: torch.Tensor, before: Sequence[Sequence[str]], after: Sequence[Sequence[str]]) -> np.ndarray:
    """The weights of the surviving candidates, edge by edge, in the survivors' order."""
    matrix = weights.cpu().numpy()
    return np.array([[matrix[edge, list(before[edge]).index(op)] for op in ops] for edge, ops in enumerate(after)])


def candidates_text(candidates: Mapping[str, Sequence[Sequence[str]]], nodes: int) -> str:
    """One line per edge: ``c_{k-2} -> 0: sep_conv_3x3, skip_connect, ...`` for both cell types."""
    lines = []
    for cell in ("normal", "reduce"):
        lines.append(f"{cell} cell:")
        for (node, state), ops in zip(edge_inputs(nodes), candidates[cell], strict=True):
            lines.append(f"  {state_name(state)} -> {node}: {', '.join(ops)}")
    return "\n".join(lines) + "\n"


def _split_search_batch(batch: Any) -> tuple[Batch, Batch]:
    if not isinstance(batch, Mapping) or "weights" not in batch or "arch" not in batch:
        raise ConfigError("The architecture search expects {'weights': batch, 'arch': batch} training batches: "
                          "set data.search_split=true.")
    return batch["weights"], batch["arch"]


def write_search_pictures(network: SearchNetwork, genotype: Genotype, folder: Path, title: str,
                          draw: bool = True) -> dict[str, Path]:
    """``genotype.txt`` and (when ``draw``) the heat map and both cell diagrams into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text_file = folder / "genotype.txt"
    text_file.write_text(genotype_text(genotype), encoding="utf-8")
    files = {"genotype_text": text_file}
    if draw:
        weights = {cell: value.cpu().numpy() for cell, value in network.arch_weights().items()}
        files["arch_weights"] = plot_arch_weights(weights, network.candidates, folder / IMAGE_FILES["arch_weights"],
                                                  nodes=network.nodes, title=title)
        files["normal_cell"] = plot_cell(genotype, "normal", folder / IMAGE_FILES["normal_cell"],
                                         title=f"normal cell ({title})")
        files["reduction_cell"] = plot_cell(genotype, "reduce", folder / IMAGE_FILES["reduction_cell"],
                                            title=f"reduction cell ({title})")
    return files


def publish_to_loggers(loggers: Sequence[Any], files: Mapping[str, Path], text: str, step: int) -> list[str]:
    """Send the pictures and the genotype text to every logger that takes them; return what was sent where.

    W&B-style loggers (with ``log_image`` / ``log_text``) and TensorBoard (``add_image`` / ``add_text`` on
    its writer) are supported; others (CSV) are skipped.
    """
    sent = []
    images = {name: path for name, path in files.items() if path.suffix == ".png"}
    for logger in loggers:
        kind = type(logger).__name__
        if hasattr(logger, "log_image"):
            for name, path in images.items():
                logger.log_image(key=f"search/{name}", images=[str(path)], step=step)
                sent.append(f"{kind}:{name}")
            if hasattr(logger, "log_text"):
                logger.log_text(key="search/genotype", columns=["genotype"], data=[[text]], step=step)
                sent.append(f"{kind}:genotype")
        elif hasattr(getattr(logger, "experiment", None), "add_image"):
            from PIL import Image

            writer = logger.experiment
            for name, path in images.items():
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                writer.add_image(f"search/{name}", pixels, step, dataformats="HWC")
                sent.append(f"{kind}:{name}")
            writer.add_text("search/genotype", "\n".join("    " + line for line in text.splitlines()), step)
            sent.append(f"{kind}:genotype")
    return sent


__all__ = ["ARCH_GRADIENTS", "ArchitectureSearch", "publish_to_loggers", "write_search_pictures"]
