"""W&B (offline) keeps one run per run directory: resumed runs continue it, jobs and phases each have their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import KeyboardInterruptSimulation, run_cli
from tests.run_record_helpers import wandb_runs
from tests.test_train_pipeline import TINY
from visionsuite.pipeline import run

CHAIN = ("phases={fit:{experiment:nas_train_digits},"
         "evaluate:{experiment:nas_train_digits,inputs:{ckpt_path:fit.last_checkpoint},overrides:['mode=test']}}")
QUICK = [*TINY, "logger=wandb", "test_after_fit=false", "trainer.max_epochs=2"]


@pytest.fixture
def offline_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_each_phase_has_its_own_run_and_a_resumed_phase_continues_it(offline_wandb, make_config,
                                                                     tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterruptSimulation):
        run(make_config(*QUICK, CHAIN, "+callbacks.stop._target_=tests.helpers.StopAfterEpochs",
                        "+callbacks.stop.epochs=1"))
    run(make_config(*QUICK, CHAIN, f"resume={run_dir}"))

    assert (run_dir / "fit" / "run.log").is_file() and (run_dir / "evaluate" / "run.log").is_file()
    fit, evaluate = wandb_runs(run_dir / "fit"), wandb_runs(run_dir / "evaluate")
    assert len(fit) == 1 and len(next(iter(fit.values()))) == 2  # one run id, written by two processes' sessions
    assert len(evaluate) == 1 and evaluate.keys() != fit.keys()  # its own run, not the fit phase's reused
    group = str(run_dir.resolve()).encode()  # not under paths.log_dir here, so the absolute folder
    for runs, phase in ((fit, b"fit"), (evaluate, b"evaluate")):
        for record in next(iter(runs.values())):
            assert group in record and phase in record  # group = the chain's folder, job_type = the phase


def test_every_multirun_job_has_its_own_run_in_the_sweep_group(tmp_path: Path) -> None:
    completed = run_cli("-m", "experiment=nas_train_digits", "seed=0,1", *TINY[1:], "trainer.max_epochs=1",
                        "logger=wandb", "test_after_fit=false", "~callbacks.progress_bar", cwd=tmp_path,
                        env={"WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "already in progress" not in completed.stdout + completed.stderr
    [sweep] = (tmp_path / "logs" / "nas_train_digits" / "multiruns").iterdir()
    jobs = [wandb_runs(sweep / job) for job in ("0", "1")]
    assert [len(runs) for runs in jobs] == [1, 1] and jobs[0].keys() != jobs[1].keys()
    group = f"nas_train_digits/multiruns/{sweep.name}".encode()
    assert all(group in record for runs in jobs for records in runs.values() for record in records)
