"""run.py's side of a faithful record: Ctrl-C, resume of a finished run, run.log, typos, show_phases, --help."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_cli
from tests.run_record_helpers import metrics_rows
from tests.test_train_pipeline import TINY

QUIET = ["logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary", "test_after_fit=false"]


def _files_and_times(run_dir: Path) -> dict[str, int]:
    return {str(path.relative_to(run_dir)): path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()}


def test_ctrl_c_says_how_to_resume_and_a_finished_run_is_left_alone(tmp_path: Path) -> None:
    interrupted = run_cli(*TINY, *QUIET, "trainer.max_epochs=2", "+callbacks.sigint._target_=tests.run_record_helpers."
                          "SigintAtStep", "+callbacks.sigint.step=4", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    [run_dir] = (tmp_path / "logs" / "nas_train_digits" / "runs").iterdir()
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert interrupted.stderr.strip().splitlines()[-1] == (
        f"interrupted: continue this run with `python run.py resume={run_dir}`")
    run_log = (run_dir / "run.log").read_text()
    assert "Seed set to" in run_log and "interrupted: continue this run" in run_log  # Lightning's lines and ours

    resumed = run_cli(f"resume={run_dir}", "~callbacks.sigint", cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [row["step"] for row in metrics_rows(run_dir) if "val/acc1" in row] == [2.0, 5.0]  # both epochs

    before = _files_and_times(run_dir)
    again = run_cli(f"resume={run_dir}", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "this run finished" in again.stdout and "mode=test ckpt_path=" in again.stdout
    assert _files_and_times(run_dir) == before  # nothing touched, no test re-run


def test_a_damaged_checkpoint_and_a_mistyped_key_are_one_line_each(tmp_path: Path) -> None:
    damaged = tmp_path / "x.ckpt"
    damaged.write_bytes(b"PK\x03\x04" + b"\0" * 20000)  # the start of a zip file, cut short
    test = run_cli(*TINY, "mode=test", f"ckpt_path={damaged}", "logger=csv", cwd=tmp_path, timeout=300)
    assert test.returncode == 2
    assert f"{damaged} is damaged" in test.stderr and "Traceback" not in test.stderr

    elsewhere = tmp_path / "typo"
    elsewhere.mkdir()
    typo = run_cli("experiment=nas_train_digits", "trainer.max_epoch=2", cwd=elsewhere, timeout=300)
    assert typo.returncode == 2
    assert "Did you mean `trainer.max_epochs`" in typo.stderr
    assert "To append to your config" not in typo.stderr  # Hydra's advice to add it with + is gone
    assert not (elsewhere / "logs").exists()  # stopped before any run directory


def test_show_phases_and_help(tmp_path: Path) -> None:
    shown = run_cli("experiment=pdarts_digits_search_and_train", "mode=show_phases", cwd=tmp_path, timeout=300)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "# phase stage3: experiment=" in shown.stdout and "# phase train: experiment=nas_train_digits" in shown.stdout
    assert not (tmp_path / "logs").exists()  # nothing ran, no run directory

    # A key only the phases have: one line saying how to reach them, not Hydra's traceback.
    phase_key = run_cli("experiment=pdarts_digits", "model.compile=aot_eager", "mode=show_phases", cwd=tmp_path,
                        timeout=300)
    assert phase_key.returncode == 2
    assert "++model.compile=..." in phase_key.stderr and "Traceback" not in phase_key.stderr

    helped = run_cli("--help", cwd=tmp_path, timeout=300)
    assert helped.returncode == 0
    for text in ("show_phases", "resume=<run dir>", "experiment: ", "docs/running.md"):
        assert text in helped.stdout
