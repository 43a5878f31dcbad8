"""Every run a faithful record, in process with CSV logging: resumed history, short runs, checkpoints.

The command-line behaviour (exit codes, Ctrl-C, finished runs, run.log, typos) is in test_run_record_cli.py, and
W&B (offline) in test_run_record_wandb.py.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import stat
from pathlib import Path

import pytest
import torch

from tests.helpers import KeyboardInterruptSimulation
from tests.run_record_helpers import metrics_rows
from tests.test_train_pipeline import TINY
from visionsuite.checkpoint_files import CheckpointFormatError, DamagedCheckpointError
from visionsuite.cli import closest_keys, unknown_key_message
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.pipeline import optimized_metric, run_job
from visionsuite.resume import RunFinished, expand_resume_argument

QUICK = [*TINY, "test_after_fit=false", "trainer.log_every_n_steps=1"]
STOP_AFTER_ONE_EPOCH = ["+callbacks.stop._target_=tests.helpers.StopAfterEpochs", "+callbacks.stop.epochs=1"]
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run (best and last checkpoints, result.json), shared by the checkpoint tests."""
    from tests.helpers import compose_config

    root = tmp_path_factory.mktemp("trained")
    run_job(compose_config([*TINY, "trainer.max_epochs=2"], root / "run", data_dir=root / "data"))
    return root / "run"


def truncated_copy(source: Path, target: Path, size: int = 20000) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes()[:size])
    return target


# ----------------------------------------------------------------------------------------- resumed history
def test_a_resumed_run_keeps_the_csv_history_of_an_uninterrupted_one(make_config, tmp_path: Path) -> None:
    run_job(make_config(*QUICK, "trainer.max_epochs=2", output_dir=tmp_path / "straight"))
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterruptSimulation):
        run_job(make_config(*QUICK, "trainer.max_epochs=2", *STOP_AFTER_ONE_EPOCH, output_dir=resumed))
    assert max(row["step"] for row in metrics_rows(resumed)) >= 3  # the kill came after the second epoch began
    run_job(make_config(*QUICK, "trainer.max_epochs=2", f"resume={resumed}", output_dir=resumed))

    straight, continued = metrics_rows(tmp_path / "straight"), metrics_rows(resumed)
    assert [sorted(row) for row in continued] == [sorted(row) for row in straight]
    for expected, got in zip(straight, continued, strict=True):
        assert got == pytest.approx(expected)
    assert {row["epoch"] for row in continued if "epoch" in row} == {0.0, 1.0}


# ----------------------------------------------------------------------------------------- short runs
def test_a_step_run_shorter_than_the_validation_interval_validates_and_leaves_checkpoints(
        make_config, tmp_path: Path) -> None:
    # The case: centernet_shapes validates every 200 steps; 3 steps used to end with no validation.
    cfg = make_config("experiment=centernet_shapes", "data.num_train=24", "data.num_val=6", "data.eval_batch_size=3",
                      "trainer.max_steps=3", "model.num_visualized=0", "test_after_fit=false")
    result = run_job(cfg)
    assert "val/AP" in result["metrics"]
    assert optimized_metric(cfg, result) == pytest.approx(result["metrics"]["val/AP"])
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 3
    assert list((tmp_path / "run" / "checkpoints").glob("step_*.ckpt"))  # the monitored checkpoint of that validation


def test_last_checkpoint_is_written_when_fitting_ends_between_validations(make_config, tmp_path: Path) -> None:
    cfg = make_config(*QUICK, "trainer.max_epochs=-1", "trainer.max_steps=4", "trainer.val_check_interval=3",
                      "trainer.check_val_every_n_epoch=null", "trainer.min_epochs=null")
    run_job(cfg)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 4  # validation ran at step 3 only; the end of fitting saved step 4
    assert [row["step"] for row in metrics_rows(tmp_path / "run") if "val/acc1" in row] == [2.0]


def test_an_epoch_run_shorter_than_check_val_every_n_epoch_validates_at_its_end(make_config) -> None:
    result = run_job(make_config(*QUICK, "trainer.max_epochs=1", "trainer.check_val_every_n_epoch=5"))
    assert "val/acc1" in result["metrics"]


def test_a_step_run_shorter_than_its_first_epoch_validates_at_its_last_step(make_config, tmp_path: Path) -> None:
    """``trainer.max_steps=2`` on an epoch-based schedule (3 batches an epoch here) validates once, at step 2."""
    result = run_job(make_config(*QUICK, "trainer.max_steps=2"))
    assert "val/acc1" in result["metrics"]
    assert [row["step"] for row in metrics_rows(tmp_path / "run") if "val/acc1" in row] == [1.0]


def test_optimized_metric_is_required_only_under_an_optimizing_sweeper(make_config, monkeypatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(*TINY, "optimized_metric=val/AP")
    with caplog.at_level(logging.WARNING):
        assert optimized_metric(cfg, {"metrics": {"val/acc1": 0.5}}) is None
    assert "optimized_metric='val/AP' was not logged" in caplog.text
    monkeypatch.setattr("visionsuite.pipeline._under_optimizing_sweeper", lambda: True)
    with pytest.raises(ConfigError, match="val/AP"):
        optimized_metric(cfg, {"metrics": {"val/acc1": 0.5}})


# ----------------------------------------------------------------------------------------- checkpoints
def test_checkpoints_carry_the_format_record(trained_run: Path) -> None:
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["visionsuite"]["format"] == 1
    assert checkpoint["visionsuite"]["module"] == "GenotypeClassifier"


def test_a_truncated_ckpt_path_is_one_message_naming_the_file(make_config, trained_run: Path, tmp_path: Path) -> None:
    damaged = truncated_copy(trained_run / "checkpoints" / "last.ckpt", tmp_path / "x.ckpt")
    with pytest.raises(DamagedCheckpointError, match=r"ckpt_path=.*x\.ckpt: .*x\.ckpt is damaged"):
        run_job(make_config(*TINY, "mode=test", f"ckpt_path={damaged}", output_dir=tmp_path / "eval"))
    assert not (tmp_path / "eval").exists()


def test_resume_with_a_damaged_last_checkpoint_names_the_ones_that_still_load(make_config, trained_run: Path,
                                                                            tmp_path: Path) -> None:
    run_dir = tmp_path / "copy"
    shutil.copytree(trained_run, run_dir)
    truncated_copy(trained_run / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "last.ckpt")
    (run_dir / "result.json").unlink()
    with pytest.raises(DamagedCheckpointError) as caught:
        run_job(make_config(*TINY, "trainer.max_epochs=3", f"resume={run_dir}", output_dir=run_dir))
    message = str(caught.value)
    assert message.startswith(f"resume={run_dir}: ") and "last.ckpt is damaged" in message
    [best] = (run_dir / "checkpoints").glob("best_*.ckpt")
    assert f"still load: {best}" in message


def test_a_checkpoint_of_an_older_format_stops_with_what_changed(make_config, tmp_path: Path) -> None:
    # A DARTS search checkpoint from before the edge sources (format 1): no state-dict key mismatch.
    cfg = make_config("experiment=darts_digits", "model.net.init_channels=4", "model.net.layers=3")
    module = build(cfg.model, "model")
    old = tmp_path / "old_search.ckpt"
    torch.save({"state_dict": module.state_dict(), "epoch": 0, "global_step": 0}, old)  # no record: format 1
    with pytest.raises(CheckpointFormatError) as caught:
        run_job(make_config("experiment=darts_digits", "model.net.init_channels=4", "model.net.layers=3", f"ckpt_path={old}"))
    message = str(caught.value)
    assert "format 1" in message and "reads format 2" in message and "EdgeSource" in message
    assert str(old) in message


# ----------------------------------------------------------------------------------------- finished runs
def test_resume_of_a_finished_run_is_refused_with_the_test_command(trained_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "finished"
    shutil.copytree(trained_run, run_dir)
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- experiment=nas_train_digits\n- model.net.layers=3\n")
    with pytest.raises(RunFinished, match="this run finished") as caught:
        expand_resume_argument(["run.py", f"resume={run_dir}"])
    assert "experiment=nas_train_digits model.net.layers=3 mode=test ckpt_path=" in str(caught.value)


def test_a_chain_is_finished_only_when_every_phase_is(tmp_path: Path) -> None:
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- experiment=pdarts_digits_search_and_train\n")
    phases = [{"name": name, "status": "ran", "output_dir": str(tmp_path / name)} for name in ("search", "train")]
    (tmp_path / "result.json").write_text(json.dumps({"mode": "phases", "phases": phases}))
    for phase in phases:
        Path(phase["output_dir"]).mkdir()
        (Path(phase["output_dir"]) / "result.json").write_text("{}")
    with pytest.raises(RunFinished, match="To run a phase again"):
        expand_resume_argument(["run.py", f"resume={tmp_path}"])
    (tmp_path / "train" / "result.json").unlink()
    assert "experiment=pdarts_digits_search_and_train" in expand_resume_argument(["run.py", f"resume={tmp_path}"])


# ----------------------------------------------------------------------------------------- small things
def test_result_json_has_the_mode_of_every_other_file(trained_run: Path) -> None:
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(trained_run / "result.json") == mode(trained_run / "csv" / "metrics.csv")
    assert mode(trained_run / "result.json") == mode(trained_run / "checkpoints" / "last.ckpt")


def test_a_mistyped_key_gets_the_closest_keys() -> None:
    hydra_output = ("Could not override 'trainer.max_epoch'.\nTo append to your config use +trainer.max_epoch=2\n"
                    "Key 'max_epoch' is not in struct\n    full_key: trainer.max_epoch\n")
    message = unknown_key_message(hydra_output, ["experiment=nas_train_digits", "trainer.max_epoch=2"], CONFIG_DIR)
    assert message is not None and "Did you mean `trainer.max_epochs`" in message
    assert closest_keys("data.batch_sise", ["data.batch_size", "data.data_dir", "seed"]) == ["data.batch_size"]
    assert unknown_key_message("Could not find 'experiment/x'", [], CONFIG_DIR) is None


def test_a_key_of_a_chains_phases_says_how_to_reach_them() -> None:
    """``model.compile`` belongs to the P-DARTS stages, not to the chain's root config: say ``++``."""
    hydra_output = ("Could not override 'model.compile'.\nTo append to your config use +model.compile=aot_eager\n"
                    "Key 'compile' is not in struct\n    full_key: model.compile\n")
    message = unknown_key_message(hydra_output, ["experiment=pdarts_digits", "model.compile=aot_eager"], CONFIG_DIR)
    assert message is not None
    assert "phases (stage1, stage2, stage3)" in message and "++model.compile=..." in message


def test_a_mistyped_argument_added_with_plus_gets_the_closest_arguments(make_config) -> None:
    with pytest.raises(ConfigError, match=r"`trainer.max_epoch` is not an argument .* Did you mean `trainer.max_epochs`"):
        run_job(make_config(*TINY, "+trainer.max_epoch=2"))


def test_show_phases_prints_every_phase_config_without_running(make_config, tmp_path: Path) -> None:
    from visionsuite.phases import show_phases

    stream = io.StringIO()
    show_phases(make_config("experiment=pdarts_digits_search_and_train"), stream)
    text = stream.getvalue()
    for phase in ("stage1", "stage2", "stage3", "train"):
        assert f"# phase {phase}: experiment=" in text
    assert "<genotype of phase stage3>" in text  # the training phase's input, not yet written
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="no `phases`"):
        show_phases(make_config(*TINY), stream)


def test_predict_says_how_many_boxes_it_drew(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from callbacks.detection import DetectionPredictionWriter

    module = SimpleNamespace(hparams=SimpleNamespace(draw_score_threshold=0.3), summary_notes={}, artifacts={},
                             category_table=lambda: [{"id": 1, "name": "square"}])
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), is_global_zero=True)
    writer = DetectionPredictionWriter()
    writer.on_predict_epoch_start(trainer, module)
    writer._drawn = {1: [2], 2: [0], 3: [1]}
    writer.on_predict_epoch_end(trainer, module)
    assert module.summary_notes["predict"] == "drew 3 boxes (score >= 0.3) on 2 of 3 images"
    writer._drawn = {1: [0]}
    writer.on_predict_epoch_end(trainer, module)
    assert "lower it to draw weaker ones" in module.summary_notes["predict"]
