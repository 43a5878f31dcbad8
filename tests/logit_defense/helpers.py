"""Helpers of the logit-defense tests: overrides that shrink the phases, and a simulated kill."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from tests.logit_defense.conftest import IMAGE_SIZE


class StopAfterBatches(pl.Callback):
    """Simulates a killed attack phase: raises when the predict loop starts batch (shard) ``batches + 1``, once
    the first ``batches`` shards are written."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def on_predict_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int,
                               dataloader_idx: int = 0) -> None:
        if batch_idx >= self.batches:
            raise SimulatedKill(f"simulated kill after {self.batches} shards")


class SimulatedKill(RuntimeError):
    """Raised by :class:`StopAfterBatches`."""


def attack_overrides(checkpoint: Path, samples: int = 64, steps: int = 3) -> list[str]:
    """The attack phase on 16x16 digits: at most ``samples`` images per split, PGD-``steps`` and FGSM."""
    return ["experiment=logit_defense_attack_digits", f"model.classifier.checkpoint={checkpoint}",
            f"data.images.image_size={IMAGE_SIZE}", "data.shard_size=32", f"data.max_samples_per_split={samples}",
            f"model.attacks.pgd.steps={steps}", "~model.attacks.cw_l2"]
