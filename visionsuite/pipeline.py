"""What ``run.py`` does with a composed config: one job (train / test / summary) or a chain of phases."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

from visionsuite.callbacks import ValidateShortRuns
from visionsuite.checkpoint_files import CheckpointRecord, StartCheckpoint, inspect_start_checkpoint
from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError, RunInterrupted
from visionsuite.instantiate import build, build_trainer
from visionsuite.loggers import continue_logging, finish_wandb_run
from visionsuite.module import SuiteModule
from visionsuite.official_weights import (
    OfficialWeightsError,
    is_lightning_checkpoint,
    load_converted,
    load_file,
    unwrap_state_dict,
)
from visionsuite.reporting import print_summary, write_result
from visionsuite.tasks import TaskResult

log = logging.getLogger(__name__)

MODES = ("train", "test", "summary", "predict")
CKPT_FORMATS = ("auto", "lightning", "official")
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run the job the config describes; a config with ``phases`` runs them in order (see ``phases.py``)."""
    if cfg.get("phases"):
        from visionsuite.phases import run_phases

        return run_phases(cfg)
    return run_recorded_job(cfg)


def run_recorded_job(cfg: DictConfig, *, announce: bool = True) -> dict[str, Any]:
    """:func:`run_job`, then finish its W&B run (failed when the job failed), so the next job of a multirun or the
    next phase of a chain opens its own run."""
    exit_code = 1
    try:
        result = run_job(cfg, announce=announce)
        exit_code = 0
        return result
    except RunInterrupted:
        exit_code = 130
        raise
    finally:
        finish_wandb_run(exit_code)


def run_job(cfg: DictConfig, *, announce: bool = True) -> dict[str, Any]:
    """Run one job.

    ``mode=train`` fits then tests; ``mode=test`` and ``mode=predict`` need ``ckpt_path`` (predict runs
    ``trainer.predict`` on the datamodule's ``predict_dataloader`` and the module writes its outputs);
    ``mode=summary`` prints a size report without data.
    """
    mode = cfg.get("mode", "train")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not a mode; use one of {', '.join(MODES)}.")
    output_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("task") is not None and mode != "summary":
        return _run_task(cfg, mode, output_dir, announce=announce)
    if mode == "summary":
        return _summarize(cfg)

    datamodule = _declared(build(cfg.data, "data"), SuiteDataModule, "data")
    # A DataModule whose predictions read only their own inputs says so (predicts_from_own_inputs): mode=predict
    # then needs neither the training data nor its class count.
    predict_only = mode == "predict" and datamodule.predicts_from_own_inputs
    if predict_only:
        datamodule.check_predict_data()
    else:
        datamodule.check_data()  # fail on missing or corrupt data before any logger or folder is created
    model = _declared(build(cfg.model, "model"), SuiteModule, "model")
    if not predict_only:
        _check_num_classes(datamodule, model)
    ckpt_path = _checkpoint_to_start_from(cfg, output_dir)
    if mode in ("test", "predict") and ckpt_path is None:
        raise ConfigError(f"mode={mode} needs a checkpoint: add ckpt_path=<file.ckpt>.")
    given_as = f"ckpt_path={cfg.ckpt_path}" if cfg.get("ckpt_path") else f"resume={cfg.get('resume')}"
    ckpt_path, start = load_start_weights(model, ckpt_path, given_as=given_as,
                                          ckpt_format=cfg.get("ckpt_format", "auto"),
                                          resuming=bool(cfg.get("resume")))
    if start is not None and mode == "train":
        continue_logging(cfg, start.logging_step)  # the CSV history and the W&B run go on, not start over
    trainer = build_trainer(cfg, extra_callbacks=[CheckpointRecord(), ValidateShortRuns()])
    if mode == "train" and not _has_validation_split(datamodule):
        _drop_monitored_checkpoints(cfg, trainer)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    try:
        metrics = _run_mode(cfg, mode, trainer, model, datamodule, ckpt_path)
    except MisconfigurationException as error:
        raise ConfigError(f"Lightning refused this configuration: {error}") from error
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into SystemExit(1) after its graceful shutdown
            raise RunInterrupted(str(output_dir)) from None
        raise

    result = {
        "task_name": cfg.task_name,
        "mode": mode,
        "output_dir": str(output_dir),
        "metrics": dict(sorted({**metrics, **_numbers(trainer.callback_metrics)}.items())),
        "artifacts": _artifacts(trainer, model, output_dir, datamodule),
        "headline": list(model.headline_artifacts),
        "optimized_metric": cfg.get("optimized_metric"),
        "notes": {**_selection_notes(cfg, mode, datamodule), **model.summary_notes},
    }
    if trainer.is_global_zero:
        write_result(output_dir, result)
        if announce:
            print_summary(result)
    return result


def _run_task(cfg: DictConfig, mode: str, output_dir: Path, *, announce: bool) -> dict[str, Any]:
    """Run the experiment's ``task`` (a step that trains nothing, see ``visionsuite.tasks``) instead of a Trainer."""
    if mode != "train":
        raise ConfigError(f"mode={mode}: experiment {cfg.task_name} is a task ({cfg.task._target_}), which only runs "
                          "(leave mode at its default).")
    task = build(cfg.task, "task")
    output_dir.mkdir(parents=True, exist_ok=True)
    outcome = task(cfg=cfg, output_dir=output_dir)
    if not isinstance(outcome, TaskResult):
        raise ConfigError(f"`task._target_` {cfg.task._target_} returned {type(outcome).__name__}, not a TaskResult.")
    result = {
        "task_name": cfg.task_name,
        "mode": mode,
        "output_dir": str(output_dir),
        "metrics": dict(sorted(outcome.metrics.items())),
        "artifacts": dict(outcome.artifacts),
        "headline": list(outcome.headline),
        "optimized_metric": cfg.get("optimized_metric"),
        "notes": dict(outcome.notes),
    }
    write_result(output_dir, result)
    if announce:
        print_summary(result)
    return result


def _run_mode(cfg: DictConfig, mode: str, trainer: pl.Trainer, model: Any, datamodule: Any,
              ckpt_path: str | None) -> dict[str, Any]:
    """Fit/test/predict as ``mode`` says; return the metrics logged during fitting."""
    metrics: dict[str, Any] = {}
    if mode == "train":
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics.update(_numbers(trainer.callback_metrics))
        if cfg.get("test_after_fit", True):
            trainer.test(model, datamodule=datamodule, ckpt_path=_checkpoint_to_test(cfg, trainer, datamodule))
    elif mode == "test":
        trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path)
    else:
        # The callbacks the module declares (e.g. a BasePredictionWriter) write the outputs into the run folder.
        trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt_path, return_predictions=False)
    return metrics


def optimized_metric(cfg: DictConfig, result: dict[str, Any]) -> float | None:
    """The value named by ``optimized_metric`` (what Hydra sweepers such as Optuna optimise).

    A metric that was not logged is an error under an optimising sweeper (it would have nothing to optimise)
    and a warning otherwise (a single run, or a plain multirun whose return values nobody reads).
    """
    name = result.get("optimized_metric", cfg.get("optimized_metric"))  # a chain's: its last phase's
    if not name:
        return None
    metrics = result.get("metrics", {})
    if name not in metrics:
        message = f"optimized_metric={name!r} was not logged; logged metrics: {', '.join(metrics) or 'none'}."
        if _under_optimizing_sweeper():
            raise ConfigError(message)
        log.warning(message)
        return None
    return float(metrics[name])


def _under_optimizing_sweeper() -> bool:
    """Whether this job runs under a Hydra sweeper that reads return values (Optuna, not the basic one)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    target = str((hydra_cfg.get("sweeper") or {}).get("_target_", ""))
    return hydra_cfg.mode == RunMode.MULTIRUN and not target.endswith("BasicSweeper")


def _summarize(cfg: DictConfig) -> dict[str, Any]:
    """Build the model without data or training; print its size report as the last line (JSON)."""
    model = _declared(build(cfg.model, "model"), SuiteModule, "model")
    report = {"task_name": cfg.task_name, **model.size_report()}
    print(json.dumps(report), flush=True)
    return {"task_name": cfg.task_name, "mode": "summary", "metrics": report, "artifacts": {}}


def _declared(built: Any, contract: type, key: str) -> Any:
    """``built`` if it subclasses the contract the pipeline relies on, else one error naming the key."""
    if not isinstance(built, contract):
        raise ConfigError(f"`{key}._target_` builds a {type(built).__name__}, not a {contract.__module__}."
                          f"{contract.__name__}: subclass it (see docs/adding_a_method.md).")
    return built


def _check_num_classes(datamodule: SuiteDataModule, model: SuiteModule) -> None:
    data_classes = datamodule.num_classes
    model_classes = model.expected_num_classes()
    if data_classes is not None and model_classes is not None and data_classes != model_classes:
        raise ConfigError(f"model.num_classes={model_classes} but the dataset has {data_classes} classes; "
                          f"set model.num_classes={data_classes}.")


def _checkpoint_to_start_from(cfg: DictConfig, output_dir: Path) -> str | None:
    """``ckpt_path`` if given; when resuming a run directory, its ``checkpoints/last.ckpt`` if there is one."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path:
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path={ckpt_path}: no such checkpoint file.")
        return str(ckpt_path)
    last = output_dir / LAST_CHECKPOINT
    if cfg.get("resume") and last.is_file():
        log.info("Resuming from %s", last)
        return str(last)
    return None


def load_start_weights(model: SuiteModule, ckpt_path: str | None, *, given_as: str, ckpt_format: str = "auto",
                       resuming: bool = False,
                       hand_to_lightning: bool = True) -> tuple[str | None, StartCheckpoint | None]:
    """Read the checkpoint a run starts from; return what Lightning continues from and its description.

    * An official checkpoint (``ckpt_format=official``, or ``auto`` and a file without Lightning's record) is
      converted by the module's :meth:`~visionsuite.module.SuiteModule.official_format` and loaded into the
      model here: ``mode=test`` evaluates it, ``mode=train`` fine-tunes from it.
    * A weights-only suite checkpoint (``python -m visionsuite.convert``) is loaded here as well.
    * Any other checkpoint is checked (a damaged file or another format stops with one message) and handed to
      Lightning, which restores the training state too; with ``hand_to_lightning=False`` (a phase task, which runs
      no Trainer) its weights are loaded into the model here.

    Args:
        given_as: how the user named the file (``ckpt_path=<file>``, ``resume=<dir>``); starts every message.
        resuming: the file is a run's own ``last.ckpt`` found by ``resume=``: always a suite checkpoint.
    """
    if ckpt_path is None:
        return None, None
    if not Path(ckpt_path).is_file():
        raise ConfigError(f"{given_as}: no such checkpoint file.")
    if ckpt_format not in CKPT_FORMATS:
        raise ConfigError(f"ckpt_format={ckpt_format!r}: use one of {', '.join(CKPT_FORMATS)}.")
    if ckpt_format != "lightning" and not resuming:
        try:
            loaded = load_file(ckpt_path)
        except OfficialWeightsError:
            if ckpt_format == "official":
                raise
            loaded = None  # unreadable: the Lightning path below names the damage
        if loaded is not None and (ckpt_format == "official" or not is_lightning_checkpoint(loaded)):
            _load_official(model, unwrap_state_dict(loaded, ckpt_path), ckpt_path, given_as)
            return None, None
    start = inspect_start_checkpoint(ckpt_path, model, given_as=given_as)
    if start.weights_only or not hand_to_lightning:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        if start.weights_only:
            log.info("%s holds weights only (no training state): loaded into the model; training starts afresh.",
                     ckpt_path)
        _note(model, "start weights", f"{ckpt_path}{' (weights only)' if start.weights_only else ''}")
        return None, None
    return ckpt_path, start


def _load_official(model: Any, official: dict[str, torch.Tensor], ckpt_path: str, given_as: str) -> None:
    """Convert an official state dict with the module's converter and load it (strict)."""
    official_format = model.official_format()
    if official_format is None:
        raise ConfigError(f"{given_as}: not a checkpoint written by this suite (no Lightning record), and "
                          f"{type(model).__name__} reads no official checkpoint format. Give a checkpoint of this "
                          "experiment (a run's checkpoints/*.ckpt).")
    load_converted(official_format.network, official, official_format.convert_key, source=ckpt_path,
                   description=official_format.description)
    log.info("Loaded the official %s from %s (converted in memory).", official_format.description, ckpt_path)
    _note(model, "start weights", f"official {official_format.description}, converted from {ckpt_path}")


def _note(model: SuiteModule, key: str, text: str) -> None:
    model.summary_notes[key] = text


def _checkpoint_to_test(cfg: DictConfig, trainer: pl.Trainer, datamodule: Any = None) -> str | None:
    """The best checkpoint (``test_ckpt=best``, the default) or the last one (``test_ckpt=last``).

    When validation is the test split (``datamodule.validates_on_test_split``), always the last one: a
    checkpoint chosen by a test-split metric would report the best test score over training.
    """
    choice = cfg.get("test_ckpt", "best")
    if choice not in ("best", "last"):
        raise ConfigError(f"test_ckpt={choice!r}: use best or last.")
    callback = trainer.checkpoint_callback
    if not isinstance(callback, ModelCheckpoint):
        return None  # no checkpointing configured: test the weights in memory
    selects_best = callback.monitor is not None and bool(callback.best_model_path)
    if choice == "best" and selects_best and not _validates_on_test_split(datamodule):
        return callback.best_model_path
    last = Path(cfg.paths.output_dir) / LAST_CHECKPOINT
    return str(last) if last.is_file() else None


def _has_validation_split(datamodule: SuiteDataModule) -> bool:
    return bool(datamodule.has_validation_split)


def _drop_monitored_checkpoints(cfg: DictConfig, trainer: pl.Trainer) -> None:
    """Without a validation split nothing logs ``monitor``: a checkpoint callback selecting by it would warn
    every epoch and keep an arbitrary file, so it is removed (``last.ckpt`` stays and is what gets tested)."""
    monitored = [callback for callback in trainer.callbacks
                 if isinstance(callback, ModelCheckpoint) and callback.monitor is not None]
    if not monitored:
        return
    trainer.callbacks = [callback for callback in trainer.callbacks if callback not in monitored]
    log.info("The data has no validation split: no checkpoint is selected by monitor=%s; the last one "
             "(checkpoints/last.ckpt) is kept and tested.", cfg.get("monitor"))


def _validates_on_test_split(datamodule: SuiteDataModule | None) -> bool:
    return datamodule is not None and bool(datamodule.validates_on_test_split)


def _selection_notes(cfg: DictConfig, mode: str, datamodule: Any) -> dict[str, str]:
    """What the summary says about the checkpoint ``mode=train`` tested."""
    if mode != "train" or not cfg.get("test_after_fit", True):
        return {}
    if _validates_on_test_split(datamodule):
        return {"tested checkpoint": "last (validation is the test split: no checkpoint is chosen by it; the "
                                     "final model is reported, as the papers do)"}
    if cfg.get("test_ckpt", "best") == "last":
        return {"tested checkpoint": "last (test_ckpt=last)"}
    if not _has_validation_split(datamodule):
        return {"tested checkpoint": "last (the data has no validation split)"}
    return {"tested checkpoint": f"best by {cfg.get('monitor')} ({cfg.get('monitor_mode')}) on the validation split"}


def _artifacts(trainer: pl.Trainer, model: Any, output_dir: Path, datamodule: Any = None) -> dict[str, str]:
    artifacts: dict[str, str] = {}
    callback = trainer.checkpoint_callback
    if (isinstance(callback, ModelCheckpoint) and callback.monitor is not None and callback.best_model_path
            and not _validates_on_test_split(datamodule)):
        artifacts["best_checkpoint"] = callback.best_model_path
    if (output_dir / LAST_CHECKPOINT).is_file():
        artifacts["last_checkpoint"] = str(output_dir / LAST_CHECKPOINT)
    artifacts.update(model.artifacts)
    return artifacts


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """Logged metrics as plain Python numbers (JSON-ready)."""
    return {name: value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else
            value.tolist() if isinstance(value, torch.Tensor) else value for name, value in metrics.items()}
