"""run.py from the command line: the default job, multirun, resume in place, DDP on CPU, sweepers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import run_cli
from tests.optional import module_available
from tests.test_train_pipeline import TINY


def result_files(root: Path) -> list[Path]:
    return sorted(root.rglob("result.json"))


def test_default_job_runs_and_prints_a_summary(tmp_path: Path) -> None:
    # The default job (P-DARTS search in three stages, then training the found cell), shrunk to seconds.
    completed = run_cli("trainer.max_epochs=1", "++trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                        "trainer.limit_test_batches=1", "logger=csv", "model.net.init_channels=4", cwd=tmp_path,
                        env={"OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "run finished" in completed.stderr and "test/acc1" in completed.stderr
    assert "normal cell" in completed.stderr and "stage3.normal_cell" in completed.stderr
    [result] = (tmp_path / "logs" / "pdarts_digits_search_and_train" / "runs").glob("*/result.json")
    assert json.loads(result.read_text())["metrics"]["test/acc1"] >= 0


def test_multirun_runs_every_seed(tmp_path: Path) -> None:
    completed = run_cli("-m", "experiment=nas_train_digits", "seed=0,1", *TINY[1:], "trainer.max_epochs=1",
                        "logger=csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = result_files(tmp_path / "logs" / "nas_train_digits" / "multiruns")
    assert [result.parent.name for result in results] == ["0", "1"]


def test_resume_continues_an_interrupted_run_in_its_directory(tmp_path: Path) -> None:
    killed = run_cli(*TINY, "trainer.max_epochs=2", "logger=csv", "+callbacks.stop._target_=tests.helpers.StopAfterEpochs",
                     "+callbacks.stop.epochs=1", cwd=tmp_path)
    assert killed.returncode != 0
    [run_dir] = (tmp_path / "logs" / "nas_train_digits" / "runs").iterdir()
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0
    # The saved overrides come back (minus the simulated kill, switched off here).
    resumed = run_cli(f"resume={run_dir}", "~callbacks.stop", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert list((tmp_path / "logs" / "nas_train_digits" / "runs").iterdir()) == [run_dir]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    assert (run_dir / "result.json").is_file()


def test_resume_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    completed = run_cli(f"resume={tmp_path}", cwd=tmp_path, timeout=120)
    assert completed.returncode == 2
    assert ".hydra/overrides.yaml" in completed.stderr and "Traceback" not in completed.stderr


def test_ddp_cpu_trains_with_two_processes(tmp_path: Path) -> None:
    completed = run_cli(*TINY, "trainer=ddp_cpu", "trainer.max_epochs=1", "logger=csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [result] = result_files(tmp_path / "logs" / "nas_train_digits")
    assert "test/acc1" in json.loads(result.read_text())["metrics"]
    assert "distributed_backend=gloo" in completed.stderr or "gloo" in completed.stdout + completed.stderr


@pytest.mark.skipif(not module_available("hydra_plugins.hydra_optuna_sweeper"),
                    reason="optional extra `optuna` not installed")
def test_optuna_sweep_runs_trials(tmp_path: Path) -> None:
    completed = run_cli("-m", "hparams_search=nas_digits_optuna", *TINY, "trainer.max_epochs=1", "logger=csv",
                        "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(result_files(tmp_path / "logs")) == 2
    assert "best_value" in (next((tmp_path / "logs").rglob("optimization_results.yaml"))).read_text()


@pytest.mark.skipif(not module_available("hydra_plugins.hydra_submitit_launcher"),
                    reason="optional extra `slurm` not installed")
def test_slurm_launcher_config_composes() -> None:
    from hydra import compose, initialize_config_dir

    from tests.helpers import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("run", overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert "submitit" in launcher._target_ and "Slurm" in launcher._target_
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 1)
