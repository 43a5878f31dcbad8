"""What the logit defense (arXiv:1906.10973) writes besides checkpoints, as callbacks.

* :class:`LogitDatasetRecorder` (Lightning's ``BasePredictionWriter``; the attack phase): opens the logit dataset
  (:mod:`datamodules.writers.logit_dataset`: its manifest holds the attacks, the classifier's identity, the
  normalisation and the seed), hands the datamodule the shards not on disk yet, and writes each shard the attack
  module predicts, all or nothing, so an interrupted attack phase resumes at the first missing shard. It counts
  the classifier's accuracy on the clean and attacked images of each split (``attack/<split>/<source>_acc``).
* :class:`LogitDefenseReport` (the evaluate phase and ``mode=predict``, declared by the defender module): after
  ``trainer.test``, ``transfer.json`` (the accuracy table, the transfer matrix and the adaptive attack's numbers),
  ``transfer.md`` (the same as markdown tables) and ``transfer_heatmap.png`` (the transfer matrix: defender
  trained on attack A, rows; evaluated on attack B, columns); after ``trainer.predict``, ``predictions.npz``
  (corrected logits and predictions) and ``predictions.csv``. The paths are added to the module's ``artifacts``
  (so ``result.json`` lists them).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter

from datamodules.writers.logit_dataset import LogitDatasetWriter, write_npz_deterministic
from metrics.logit_defense import CLEAN, UNDEFENDED, DefenseAccuracy, transfer_matrix
from visionsuite.io import atomic_write_json, atomic_write_text


class LogitDatasetRecorder(BasePredictionWriter):
    """Writes the shards the attack module predicts into the logit dataset ``logit_dir``.

    Each prediction is one shard: ``{"split", "shard", "index", "label", "clean" (n, C), "adv" (n, K, C)}``
    (:class:`~lightning_modules.logit_defense.LogitAttackModule`). :attr:`metrics` holds, after the predict loop,
    the classifier's accuracy on the clean and attacked images of the shards written in this run.

    Args:
        logit_dir: The logit dataset directory (created, or reopened to resume).
        num_classes: The classifier's number of logits.
    """

    def __init__(self, logit_dir: str | os.PathLike[str], num_classes: int) -> None:
        super().__init__(write_interval="batch")
        self.logit_dir = Path(logit_dir)
        self.num_classes = int(num_classes)
        self.dataset: LogitDatasetWriter | None = None
        self.accuracy: dict[str, DefenseAccuracy] = {}
        self.metrics: dict[str, float] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Open the dataset (the manifest is written once, or checked against these settings) and give the
        datamodule the pending shards (before Lightning asks it for the predict dataloader)."""
        datamodule = trainer.datamodule
        mean, std = datamodule.normalization()
        sizes, strides = datamodule.split_sizes()
        self.dataset = LogitDatasetWriter(
            self.logit_dir, self.num_classes, pl_module.attack_specs, sizes, datamodule.shard_size,
            classifier=pl_module.net.identity, normalization={"mean": mean, "std": std}, seed=pl_module.seed,
            strides=strides,
        ).open()
        datamodule.pending = [(split, shard, self.dataset.shard_indices(split, shard))
                              for split, shard in self.dataset.pending_shards()]
        self.accuracy = {split: DefenseAccuracy([], list(pl_module.attack_specs)).to(pl_module.device)
                         for split in sizes}
        pl_module.artifacts["logits"] = str(self.logit_dir)

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: dict[str, Any],
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        assert self.dataset is not None
        split, labels = prediction["split"], prediction["label"]
        self.dataset.write_shard(split, int(prediction["shard"]), prediction["index"].cpu().numpy(),
                                 labels.cpu().numpy(), prediction["clean"].cpu().numpy(),
                                 prediction["adv"].cpu().numpy())
        sources = torch.cat([prediction["clean"].unsqueeze(0), prediction["adv"].transpose(0, 1)])  # (1 + K, n, C)
        self.accuracy[split].update(sources.unsqueeze(0), labels)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The accuracies of this run's shards, per split (gathered over processes), sent to the loggers."""
        self.metrics = {}
        for split, accuracy in self.accuracy.items():
            if int(trainer.strategy.reduce(accuracy.total.clone(), reduce_op="sum")) == 0:
                continue  # no shard of this split was written in this run
            for source, value in accuracy.as_table()[UNDEFENDED].items():
                self.metrics[f"attack/{split}/{source}_acc"] = float(value)
            accuracy.reset()
        for logger in trainer.loggers:
            logger.log_metrics(self.metrics, step=trainer.global_step)


def result_paths(run_dir: str | Path) -> dict[str, Path]:
    """Where the evaluate phase writes its report, and ``mode=predict`` its corrected logits."""
    root = Path(run_dir)
    return {"transfer_json": root / "transfer.json", "transfer_table": root / "transfer.md",
            "transfer_heatmap": root / "transfer_heatmap.png", "predictions": root / "predictions.npz",
            "predictions_csv": root / "predictions.csv"}


def markdown_report(evaluation: dict[str, Any]) -> str:
    """The accuracy table (rows: classifier alone, + each defender; columns: clean and each attack), the
    transfer matrix and the adaptive attack's accuracy, as markdown (percentages)."""
    sources = evaluation["sources"]
    lines = ["Accuracy (%) of the classifier alone and with each defender (named by the attack it was trained on).",
             "", "| model | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for row, values in evaluation["accuracy"].items():
        label = "classifier alone" if row == UNDEFENDED else f"+ defender ({row})"
        lines.append(f"| {label} | " + " | ".join(f"{100 * values[source]:.1f}" for source in sources) + " |")
    matrix = transfer_matrix(evaluation)
    attacks = [source for source in sources if source != CLEAN]
    lines += ["", "Transfer matrix (%): defender trained on the row's attack, evaluated on the column's attack.", "",
              "| trained on \\ evaluated on | " + " | ".join(attacks) + " |", "|---|" + "---|" * len(attacks)]
    lines += [f"| {row} | " + " | ".join(f"{100 * values[attack]:.1f}" for attack in attacks) + " |"
              for row, values in matrix.items()]
    if evaluation.get("adaptive"):
        spec = evaluation.get("adaptive_attack") or {}
        settings = ", ".join(f"{key}={value}" for key, value in spec.items())
        lines += ["", f"Adaptive white-box attack through classifier + defender ({settings}): accuracy (%).", "",
                  "| defender | attack through classifier + defender | attack on the classifier only, then the defender |",
                  "|---|---|---|"]
        for name, value in evaluation["adaptive"].items():
            oblivious = evaluation["accuracy"][name].get(spec.get("name", ""), float("nan"))
            lines.append(f"| {name} | {100 * value:.1f} | {100 * oblivious:.1f} |")
    return "\n".join(lines) + "\n"


def draw_heatmap(evaluation: dict[str, Any], path: Path) -> Path:
    """The transfer matrix as a heat map PNG (accuracy in %, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = transfer_matrix(evaluation)
    rows = list(matrix)
    columns = list(next(iter(matrix.values())))
    values = np.array([[100 * matrix[row][column] for column in columns] for row in rows])
    figure, axes = plt.subplots(figsize=(1.4 * len(columns) + 2.5, 1.0 * len(rows) + 1.8), dpi=120)
    image = axes.imshow(values, vmin=0, vmax=100, cmap="viridis")
    axes.set_xticks(range(len(columns)), columns)
    axes.set_yticks(range(len(rows)), rows)
    axes.set_xlabel("evaluated on attack")
    axes.set_ylabel("defender trained on attack")
    for i in range(len(rows)):
        for j in range(len(columns)):
            axes.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", color="w" if values[i, j] < 60 else "k")
    figure.colorbar(image, ax=axes, label="accuracy (%)")
    axes.set_title("Logit defender transfer")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)
    return path


class LogitDefenseReport(pl.Callback):
    """Writes the evaluate phase's tables and heat map (test) and the corrected logits (predict)."""

    def __init__(self) -> None:
        self._predictions: list[dict[str, torch.Tensor]] = []

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        evaluation = getattr(pl_module, "evaluation", None)
        if not evaluation or not trainer.is_global_zero:
            return
        paths = result_paths(trainer.default_root_dir)
        atomic_write_json(paths["transfer_json"], {**evaluation, "transfer": transfer_matrix(evaluation)})
        atomic_write_text(paths["transfer_table"], markdown_report(evaluation))
        draw_heatmap(evaluation, paths["transfer_heatmap"])
        pl_module.artifacts.update({key: str(paths[key]) for key in ("transfer_json", "transfer_table",
                                                                      "transfer_heatmap")})

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._predictions = []

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._predictions.append({key: value.detach().cpu() for key, value in outputs.items()})

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._predictions or not trainer.is_global_zero:
            return
        arrays = {key: torch.cat([part[key] for part in self._predictions]).numpy() for key in self._predictions[0]}
        paths = result_paths(trainer.default_root_dir)
        write_npz_deterministic(paths["predictions"], arrays)
        sources = trainer.datamodule.predict_sources()
        defenders = list(pl_module.net.attack_names)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["row", "source", "label", "undefended", *[f"defended_{name}" for name in defenders]])
        for row in range(len(arrays["label"])):
            source = int(arrays["source"][row])
            writer.writerow([row, sources[source] if source < len(sources) else source, int(arrays["label"][row]),
                             int(arrays["undefended"][row]), *[int(value) for value in arrays["defended"][row]]])
        atomic_write_text(paths["predictions_csv"], buffer.getvalue())
        pl_module.artifacts.update({"predictions": str(paths["predictions"]),
                                    "predictions_csv": str(paths["predictions_csv"])})
        self._predictions = []


__all__ = ["LogitDatasetRecorder", "LogitDefenseReport", "draw_heatmap", "markdown_report", "result_paths"]
