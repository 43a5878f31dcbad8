"""AugRefine's picture of the distribution gap (arXiv:1909.09148): clean vs augmented training loss, per step.

:class:`AugmentationGapPlot`, declared by :class:`~lightning_modules.classification.ImageClassifier`,
collects the losses the module measures on the two views of the same training images (``data.paired_augment``),
appends them to ``augmentation_gap.csv`` in the run directory after every epoch and redraws
``augmentation_gap.png`` from that file (so a resumed run keeps the earlier epochs). Both files are listed in
the run's artifacts, and the picture goes to every logger that takes images. Without paired views it writes
nothing.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from matplotlib.figure import Figure

COLUMNS = ("step", "epoch", "loss_clean", "loss_augmented")


class AugmentationGapPlot(pl.Callback):
    """Write ``<name>.csv`` and ``<name>.png`` of the clean / augmented losses into the run directory.

    Args:
        name: file stem of the table and the picture.
        log_key: the key the picture is sent to loggers under.
    """

    def __init__(self, name: str = "augmentation_gap", log_key: str = "refine/augmentation_gap") -> None:
        self.name = name
        self.log_key = log_key
        self.rows: list[tuple[int, int, float, float]] = []

    def _paths(self, trainer: pl.Trainer) -> tuple[Path, Path]:
        folder = Path(trainer.default_root_dir)
        return folder / f"{self.name}.csv", folder / f"{self.name}.png"

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Drop rows written after the checkpoint a resumed run restarts from."""
        table, _ = self._paths(trainer)
        self.rows = []
        if trainer.is_global_zero and table.is_file():
            kept = [row for row in _read(table) if int(row[0]) < trainer.global_step]
            _write(table, kept)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if isinstance(outputs, dict) and "loss_clean" in outputs:
            self.rows.append((trainer.global_step, trainer.current_epoch, float(outputs["loss_clean"]),
                              float(outputs["loss_augmented"])))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not self.rows:
            return
        table, picture = self._paths(trainer)
        _write(table, [*(_read(table) if table.is_file() else []), *self.rows])
        self.rows = []
        draw(table, picture)
        artifacts = getattr(pl_module, "artifacts", None)
        if isinstance(artifacts, dict):
            artifacts["augmentation_gap_table"] = str(table)
            artifacts["augmentation_gap_plot"] = str(picture)
        if hasattr(pl_module, "log_images"):
            pl_module.log_images(self.log_key, [picture])


def draw(table: Path, picture: Path) -> None:
    """Plot the clean and augmented loss of ``table`` against the step into ``picture`` (PNG)."""
    rows = _read(table)
    steps = [int(row[0]) for row in rows]
    figure = Figure(figsize=(6.4, 3.6), dpi=100)  # drawn on matplotlib's Agg canvas, no pyplot state
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(steps, [float(row[2]) for row in rows], label="clean view (trained on)", color="tab:blue")
    axes.plot(steps, [float(row[3]) for row in rows], label="augmented view (phase-1 policy)", color="tab:orange")
    axes.set_xlabel("training step")
    axes.set_ylabel("cross-entropy (eval mode)")
    axes.set_title("Training loss on clean vs augmented views of the same images")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(picture)


def _read(table: Path) -> list[list[str]]:
    with table.open(newline="") as handle:
        return list(csv.reader(handle))[1:]


def _write(table: Path, rows: list[Any]) -> None:
    table.parent.mkdir(parents=True, exist_ok=True)
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


__all__ = ["AugmentationGapPlot", "draw"]
