"""No checkpoint is chosen by a metric of the test split: when validation is the test split, mode=train tests the
last checkpoint and says so; otherwise it tests the best one by ``monitor``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import pytorch_lightning as pl

from datamodules.writers import write_cifar10
from visionsuite.pipeline import run_job

TINY_CIFAR = [
    "experiment=nas_train_cifar10",
    "model.net.init_channels=4",
    "model.net.layers=3",
    "data.batch_size=16",
    "data.num_workers=0",
    "data.pin_memory=false",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
]


class RecordTestedCheckpoint(pl.Callback):
    """Records the checkpoint every ``trainer.test`` of the process evaluated."""

    tested: ClassVar[list[str | None]] = []

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        RecordTestedCheckpoint.tested.append(trainer.ckpt_path)


def test_validation_on_the_test_split_tests_the_last_checkpoint(make_config, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", num_train=40, num_test=20)
    RecordTestedCheckpoint.tested.clear()
    cfg = make_config(*TINY_CIFAR, "data.val_fraction=0",
                      "+callbacks.record._target_=tests.test_checkpoint_selection.RecordTestedCheckpoint")
    result = run_job(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert RecordTestedCheckpoint.tested == [str(last)]
    assert result["notes"]["tested checkpoint"].startswith("last (validation is the test split")
    assert "best_checkpoint" not in result["artifacts"]  # nothing selected by a test-split metric is offered
    assert "test/acc1" in result["metrics"]


@pytest.mark.slow
def test_a_held_out_validation_split_tests_the_best_checkpoint(make_config, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", num_train=40, num_test=20)
    RecordTestedCheckpoint.tested.clear()
    cfg = make_config(*TINY_CIFAR, "data.val_fraction=0.25",
                      "+callbacks.record._target_=tests.test_checkpoint_selection.RecordTestedCheckpoint")
    result = run_job(cfg)
    assert RecordTestedCheckpoint.tested == [result["artifacts"]["best_checkpoint"]]
    assert result["notes"]["tested checkpoint"] == "best by val/acc1 (max) on the validation split"


def test_datamodules_say_when_validation_is_the_test_split(tmp_path: Path) -> None:
    from datamodules.cifar import CIFARDataModule
    from datamodules.coco import CocoDataModule
    from datamodules.digits import DigitsDataModule

    root = tmp_path / "data"
    assert CIFARDataModule("cifar10", root, val_fraction=0.0).validates_on_test_split
    assert not CIFARDataModule("cifar10", root, val_fraction=0.1).validates_on_test_split
    assert not CIFARDataModule("cifar10", root, search_split=True).validates_on_test_split  # architecture half
    assert not DigitsDataModule().validates_on_test_split  # a fixed validation split of its own
    assert CocoDataModule(str(root), val_split="val2017", test_split="val2017").validates_on_test_split
    assert not CocoDataModule(str(root), val_split="minival", test_split="val2017").validates_on_test_split
