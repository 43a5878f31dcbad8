"""Training a genotype end to end through the pipeline run.py uses: outputs, test mode, resume, NaN guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import KeyboardInterruptSimulation
from visionsuite.errors import TrainingDivergedError
from visionsuite.pipeline import run_job

TINY = [
    "experiment=nas_train_digits",
    "model.net.init_channels=4",
    "model.net.layers=3",
    "data.batch_size=16",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
]


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def test_train_writes_checkpoints_result_and_metrics(make_config, tmp_path: Path) -> None:
    cfg = make_config(*TINY, "trainer.max_epochs=2")
    result = run_job(cfg)
    run_dir = tmp_path / "run"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(result["artifacts"]["best_checkpoint"]).is_file()
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["metrics"]["test/acc1"] == pytest.approx(result["metrics"]["test/acc1"])
    for name in ("train/loss_epoch", "val/acc1", "val/acc5", "test/acc1", "test/acc5"):
        assert name in saved["metrics"]
    assert (run_dir / "csv" / "metrics.csv").is_file()
    # the checkpoint carries the architecture it was trained with
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["hyper_parameters"]["genotype"]["normal"][0] == ["skip_connect", 0]


def test_mode_test_evaluates_a_checkpoint(make_config, tmp_path: Path) -> None:
    run_job(make_config(*TINY, "trainer.max_epochs=1"))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = run_job(make_config(*TINY, "mode=test", f"ckpt_path={checkpoint}", output_dir=tmp_path / "eval"))
    assert 0.0 <= result["metrics"]["test/acc1"] <= 1.0
    assert "val/acc1" not in result["metrics"]


def test_interrupted_and_resumed_training_reaches_the_same_weights(make_config, tmp_path: Path) -> None:
    run_job(make_config(*TINY, "trainer.max_epochs=3", output_dir=tmp_path / "straight"))

    interrupted = make_config(*TINY, "trainer.max_epochs=3", "+callbacks.stop._target_=tests.helpers.StopAfterEpochs",
                              "+callbacks.stop.epochs=2", output_dir=tmp_path / "resumed")
    with pytest.raises(KeyboardInterruptSimulation):
        run_job(interrupted)
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == 1  # killed after two epochs
    run_job(make_config(*TINY, "trainer.max_epochs=3", f"ckpt_path={last}", output_dir=tmp_path / "resumed"))

    straight = weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    resumed = weights(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_resume_key_continues_in_the_run_directory(make_config, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterruptSimulation):
        run_job(make_config(*TINY, "trainer.max_epochs=2", "+callbacks.stop._target_=tests.helpers.StopAfterEpochs",
                            "+callbacks.stop.epochs=1"))
    result = run_job(make_config(*TINY, "trainer.max_epochs=2", f"resume={run_dir}"))
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["epoch"] == 1
    assert "test/acc1" in result["metrics"]


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(make_config, tmp_path: Path) -> None:
    cfg = make_config(*TINY, "trainer.max_epochs=3", "+callbacks.poison._target_=tests.helpers.PoisonWeightsAtEpoch",
                      "+callbacks.poison.epoch=1")
    with pytest.raises(TrainingDivergedError, match="training loss became nan.*last good checkpoint"):
        run_job(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 0
    assert all(torch.isfinite(value).all() for value in last["state_dict"].values() if value.is_floating_point())
    assert not [path for path in checkpoints.iterdir() if not path.name.endswith(".ckpt")]
    assert not (tmp_path / "run" / "result.json").exists()
