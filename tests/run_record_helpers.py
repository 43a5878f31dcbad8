"""Helpers of the run-record tests: a simulated Ctrl-C, metrics.csv rows, W&B offline runs of a folder."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytorch_lightning as pl


class SigintAtStep(pl.Callback):
    """Sends this process SIGINT (what Ctrl-C does) when training reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # A process started in the background of a non-interactive shell (a CI script's `cmd &`) inherits SIGINT
            # ignored, so Python installs no KeyboardInterrupt handler; a user's terminal has it: restore it.
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object,
                             batch_idx: int) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGINT)


def metrics_rows(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``<run dir>/csv/metrics.csv`` with their non-empty values as numbers."""
    with (run_dir / "csv" / "metrics.csv").open(newline="") as stream:
        return [{key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(stream)]


def wandb_runs(run_dir: Path) -> dict[str, list[bytes]]:
    """The offline W&B runs written under ``<run dir>/wandb``: run id -> the bytes of each of its run files."""
    runs: dict[str, list[bytes]] = {}
    for folder in sorted((run_dir / "wandb").glob("offline-run-*")):
        run_id = folder.name.rsplit("-", 1)[1]
        runs.setdefault(run_id, []).append(b"".join(path.read_bytes() for path in folder.glob("run-*.wandb")))
    return runs
