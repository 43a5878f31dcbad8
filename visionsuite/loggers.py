"""Loggers that keep one record per run directory: CSV history and W&B runs that survive a resume.

* :class:`CSVLogger` is Lightning's CSV logger, except that a run continuing from a checkpoint keeps the rows
  logged before that checkpoint (Lightning's own logger deletes ``metrics.csv`` when its folder is not empty).
* :func:`continue_logging` is what the pipeline calls before it builds the loggers of a run that continues from a
  checkpoint: the CSV logger keeps the history up to the checkpoint's step, and a W&B logger writing into the
  same run directory continues the W&B run found there (same id, ``resume="allow"``, offline too).
* :func:`finish_wandb_run` ends the W&B run of a job (or phase) when the job ends, even on failure, so the next
  job of a multirun, or the next phase of a chain, opens its own run instead of reusing this one.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter

log = logging.getLogger(__name__)

WANDB_LOGGER = "WandbLogger"
STEP_COLUMN = "step"


class HistoryKeepingWriter(ExperimentWriter):
    """Lightning's CSV writer that keeps the rows of ``metrics.csv`` logged before step ``keep_until_step``.

    Rows logged after the checkpoint a run continues from are logged again by the continued run, so the old
    ones are dropped: an old row is kept when its step is at most ``keep_until_step`` and below the first step
    the continued run logs (a checkpoint written at the end of a training epoch holds the step the next epoch
    starts at, one written after a mid-epoch validation the step of that validation).
    """

    def __init__(self, log_dir: str, keep_until_step: int | None) -> None:
        self._history: list[dict[str, str]] | None = None
        if keep_until_step is not None:
            self._history = _read_rows(Path(log_dir) / self.NAME_METRICS_FILE, keep_until_step)
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        if self._history is None:
            super()._check_log_dir_exists()  # a fresh run: Lightning deletes an earlier metrics.csv

    def save(self) -> None:
        if self._history is not None and self.metrics:
            first_new_step = min(int(row[STEP_COLUMN]) for row in self.metrics)
            kept = [row for row in self._history if int(float(row[STEP_COLUMN])) < first_new_step]
            self._history = None
            self._rewrite(kept)
        super().save()

    def _rewrite(self, kept: list[dict[str, str]]) -> None:
        """Write the kept rows under a header that also has the new rows' keys; later saves append."""
        keys = set(self.metrics_keys).union(*kept) if kept else set(self.metrics_keys)
        self.metrics_keys = sorted(keys.union(*self.metrics))
        path = Path(self.metrics_file_path)
        if not kept:
            path.unlink(missing_ok=True)
            return
        with path.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(kept)


def _read_rows(path: Path, keep_until_step: int) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    return [row for row in rows if row.get(STEP_COLUMN) and int(float(row[STEP_COLUMN])) <= keep_until_step]


class CSVLogger(LightningCSVLogger):
    """Lightning's ``CSVLogger`` that keeps the history of a continued run (see :class:`HistoryKeepingWriter`).

    Args:
        keep_until_step: the logging step of the checkpoint the run continues from; ``None`` for a fresh run.
        **kwargs: Lightning's ``CSVLogger`` arguments.
    """

    def __init__(self, *args: Any, keep_until_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep_until_step = keep_until_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = HistoryKeepingWriter(self.log_dir, self.keep_until_step)
        return self._experiment


def previous_wandb_run_id(save_dir: str | os.PathLike[str]) -> str | None:
    """The id of the latest W&B run written under ``<save_dir>/wandb`` (``offline-run-<date>-<id>`` folders)."""
    folder = Path(save_dir) / "wandb"
    if not folder.is_dir():
        return None
    runs = sorted(path.name for path in folder.iterdir()
                  if path.is_dir() and path.name.startswith(("run-", "offline-run-")) and path.name.count("-") >= 2)
    return runs[-1].rsplit("-", 1)[1] if runs else None


def continue_logging(cfg: DictConfig, logging_step: int) -> None:
    """Make the loggers of ``cfg`` continue the record of a run resumed at ``logging_step`` (edits ``cfg``)."""
    for name, node in (cfg.get("logger") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        target = str(node._target_)
        with open_dict(node):
            if target == f"{CSVLogger.__module__}.{CSVLogger.__name__}":
                node.keep_until_step = int(logging_step)
            elif target.endswith(WANDB_LOGGER) and not node.get("id"):
                run_id = previous_wandb_run_id(node.get("save_dir") or cfg.paths.output_dir)
                if run_id is not None:
                    node.id = run_id
                    node.resume = "allow"
                    log.info("logger.%s continues W&B run %s", name, run_id)


def finish_wandb_run(exit_code: int = 0) -> None:
    """Finish the process's active W&B run, if any (``exit_code`` non-zero marks it failed)."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is not None:
        run.finish(exit_code=exit_code)
