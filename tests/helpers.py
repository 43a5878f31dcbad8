"""Test helpers: compose configs like run.py does, shrink them, run run.py in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"

# Test size: CPU, CSV logging only, no progress bar or model summary noise, tiny loops.
SMALL = [
    "logger=csv",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.model_summary",
]


def compose_config(overrides: list[str], output_dir: Path, data_dir: Path | None = None) -> DictConfig:
    """Compose ``conf/run.yaml`` with ``overrides`` and make Hydra's runtime config available, as run.py does."""
    extra = [f"paths.output_dir={output_dir}"]
    if data_dir is not None:
        extra.append(f"paths.data_dir={data_dir}")
    all_overrides = [*SMALL, *extra, *overrides]
    GlobalHydra.instance().clear()
    initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3")
    cfg = compose(config_name="run", overrides=all_overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_cli(*args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` from ``cwd`` (outputs land under ``cwd/logs``)."""
    full_env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, str(REPO_ROOT / "run.py"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


class StopAfterEpochs(pl.Callback):
    """Simulates a killed run: raises after ``epochs`` training epochs, once their checkpoint is written."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch >= self.epochs:
            raise KeyboardInterruptSimulation(f"simulated kill at epoch {trainer.current_epoch}")


class KeyboardInterruptSimulation(RuntimeError):
    """Raised by :class:`StopAfterEpochs`."""


class PoisonWeightsAtEpoch(pl.Callback):
    """Makes the loss NaN from epoch ``epoch`` on, by filling the weights with NaN."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))
