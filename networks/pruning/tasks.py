"""The prune step of Pruning from Scratch and of its baseline as a phase task (``visionsuite.tasks``): it trains nothing.

:func:`prune` (arXiv:1909.12579, Sec. 3.3) builds the experiment's module (``model``: the gate learning of
:class:`~lightning_modules.pruning.GateLearning`, or the baseline's trained full
:class:`~lightning_modules.pruning.PrunedClassifier`), loads the checkpoint to prune (``ckpt_path``: a suite checkpoint,
or the official file its ``official_format`` reads), ranks the channels by ``model.prune.criterion`` and cuts them to
``model.prune.target`` of the unexpanded network's multiply-adds (:mod:`networks.pruning.search`), and writes into the
run directory:

* ``structure.json``, the artifact the retrain / fine-tune phase consumes (``model.net.structure``);
* ``structure.txt``, the per-layer table (also printed);
* ``structure_channels.png``, the reference, pruned-from and kept widths per layer (and those of ``compare_with``,
  e.g. the other pipeline's structure), also sent to the loggers.

It then silences the pruned channels and evaluates that network, pruned but not retrained, on the test split
(``test/acc1``, ``test/acc5``, ``test/loss``, with a plain loop over the test loader, limited as the test loop would
be by ``trainer.limit_test_batches``), and logs those numbers to the run's loggers. The experiments name it in
``task`` (``conf/experiment/pfs/prune.yaml``); it is config-layer code, not imported by :mod:`networks.pruning`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lightning_modules.pruning import GateLearning, PrunedClassifier
from metrics.classification import evaluate_classifier
from networks.pruning.families import prunable_family
from networks.pruning.importance import silence_pruned_channels
from networks.pruning.plot import plot_channel_counts
from networks.pruning.pruner import prune_network
from networks.pruning.structure import STRUCTURE_FILE, Structure, load_structure
from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build, build_many
from visionsuite.io import is_unset
from visionsuite.module import send_images
from visionsuite.pipeline import load_start_weights
from visionsuite.tasks import TaskResult

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]



def prune(cfg: DictConfig, output_dir: Path, compare_with: str | None = None) -> TaskResult:
    """The prune step of Pruning from Scratch and of its baseline (see the module docstring).

    Args:
        cfg: the job's config: ``model`` (:class:`GateLearning`, or :class:`PrunedClassifier` for the baseline, with
            its ``prune`` settings), ``ckpt_path`` (the gate checkpoint or trained classifier, suite or official),
            ``data`` (whose test split the pruned network is evaluated on) and ``logger``.
        output_dir: the run directory (``structure.json``, ``structure.txt``, ``structure_channels.png``).
        compare_with: another ``structure.json`` of the same backbone drawn beside this one (``task.compare_with``).
    """
    datamodule = build(cfg.data, "data")
    if not isinstance(datamodule, SuiteDataModule):
        raise ConfigError(f"`data._target_` builds a {type(datamodule).__name__}, not a SuiteDataModule.")
    datamodule.check_data()
    model = build(cfg.model, "model")
    if not isinstance(model, GateLearning | PrunedClassifier):
        raise ConfigError(f"task {cfg.task._target_}: model builds a {type(model).__name__}, not a prunable module "
                          "(use model=pfs_gate_learning or model=pfs_classifier).")
    if datamodule.num_classes is not None and datamodule.num_classes != int(model.hparams.num_classes):
        raise ConfigError(f"model.num_classes={model.hparams.num_classes} but the dataset has "
                          f"{datamodule.num_classes} classes; set model.num_classes={datamodule.num_classes}.")
    if is_unset(cfg.get("ckpt_path")):
        raise ConfigError("The prune step needs the network to prune: ckpt_path=<the gate-learning checkpoint, or the "
                          "trained classifier of the baseline>.")
    load_start_weights(model, str(cfg.ckpt_path), given_as=f"ckpt_path={cfg.ckpt_path}",
                       ckpt_format=cfg.get("ckpt_format", "auto"), hand_to_lightning=False)
    try:
        structure = prune_network(model.net, model.family, model.prune_settings,
                                  num_classes=int(model.hparams.num_classes), input_size=int(model.hparams.input_size),
                                  width_multiplier=model.width_multiplier)
    except ValueError as error:
        raise ConfigError(f"model.prune.{error}") from None
    silence_pruned_channels(model.net, model.family.groups_of(model.net), structure.kept)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = structure.save(output_dir / STRUCTURE_FILE)
    table = structure.table()
    (output_dir / "structure.txt").write_text(table + "\n")
    print(table, flush=True)
    plot = _plot(structure, output_dir / "structure_channels.png", None if is_unset(compare_with) else str(compare_with))
    log.info("Pruned %s to %.4f multiply-add reduction (target %s): %s", structure.backbone, structure.achieved,
             structure.target, path)
    batches = _test_batches(cfg, datamodule)
    metrics = {} if batches is None else evaluate_classifier(model.net.to(_device(cfg)), batches,
                                                             int(model.hparams.num_classes))
    _log(cfg, metrics, plot, f"{structure.backbone} target {structure.target}")
    return TaskResult(metrics=metrics, artifacts={"structure": str(path),
                                                  "structure_table": str(output_dir / "structure.txt"),
                                                  "structure_plot": str(plot)},
                      headline=tuple(model.headline_artifacts), notes=dict(model.summary_notes))


def _device(cfg: DictConfig) -> torch.device:
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="cpu"))
    return torch.device("cuda" if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu")


def _test_batches(cfg: DictConfig, datamodule: SuiteDataModule) -> Iterator[Batch] | None:
    """The test loader, limited as the trainer's test loop would be (``trainer.limit_test_batches``); ``None`` when
    that limit is 0 (no test loop)."""
    datamodule.prepare_data()
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    limit = OmegaConf.select(cfg, "trainer.limit_test_batches", default=None)
    if limit is None or (isinstance(limit, float) and limit >= 1.0):
        return iter(loader)
    count = int(limit) if isinstance(limit, int) else int(len(loader) * float(limit))
    return islice(loader, count) if count > 0 else None


def _log(cfg: DictConfig, metrics: dict[str, float], plot: Path, caption: str) -> None:
    """The metrics, the config and the channel plot to the run's loggers (CSV, W&B...), as a test loop logs them."""
    loggers = build_many(cfg.get("logger"), "logger")
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        logger.log_metrics({**metrics, "epoch": 0}, step=0)  # as a test loop logs them
    send_images(loggers, "pruning/channels", [plot], 0, [caption])
    for logger in loggers:
        logger.save()
        logger.finalize("success")


def _plot(structure: Structure, path: Path, compare_with: str | None) -> Path:
    """Reference, pruned-from and kept widths per layer (and those of ``compare_with``)."""
    series = {
        f"reference (x{structure.reference_width_multiplier:g})":
            prunable_family(structure.backbone).default_channels(structure.reference_width_multiplier),
        f"pruned from (x{structure.width_multiplier:g})": structure.full_channels,
        f"kept ({structure.criterion})": structure.channels,
    }
    if compare_with is not None:
        try:
            other = load_structure(compare_with)
        except ConfigError as error:
            raise ConfigError(f"task.compare_with={error}") from None
        if other.layers != structure.layers:
            raise ConfigError(f"task.compare_with={compare_with}: its layers differ from this {structure.backbone} "
                              "structure's.")
        series[f"kept ({other.criterion}, other run)"] = other.channels
    title = (f"{structure.backbone}: {structure.madds / 1e6:.1f}M multiply-adds, reduction "
             f"{structure.achieved:.3f} (target {structure.target})")
    return plot_channel_counts(series, structure.layers, path, title)


__all__ = ["prune"]
