"""The phase mechanism: several experiments in one command, each resumable and runnable from an artifact."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.test_train_pipeline import TINY
from visionsuite.errors import ConfigError
from visionsuite.phases import plan_overrides, show_phases
from visionsuite.pipeline import run

# Phase `fit` trains; phase `evaluate` tests the checkpoint that `fit` wrote (its artifact).
CHAIN = ("phases={fit:{experiment:nas_train_digits},"
         "evaluate:{experiment:nas_train_digits,inputs:{ckpt_path:fit.best_checkpoint},overrides:['mode=test']}}")
SMALL_CHAIN = [*TINY, "trainer.max_epochs=1", CHAIN]


def test_phases_run_in_order_and_pass_artifacts(make_config, tmp_path: Path) -> None:
    result = run(make_config(*SMALL_CHAIN))
    run_dir = tmp_path / "run"
    fit = json.loads((run_dir / "fit" / "result.json").read_text())
    evaluate = json.loads((run_dir / "evaluate" / "result.json").read_text())
    assert Path(fit["artifacts"]["best_checkpoint"]).is_relative_to(run_dir / "fit")
    assert evaluate["mode"] == "test"
    assert evaluate["metrics"]["test/acc1"] == pytest.approx(fit["metrics"]["test/acc1"])
    assert [phase["status"] for phase in result["phases"]] == ["ran", "ran"]
    assert (run_dir / "fit" / "config.yaml").is_file()
    assert json.loads((run_dir / "result.json").read_text())["mode"] == "phases"


def test_finished_phases_are_skipped_when_the_chain_resumes(make_config, tmp_path: Path) -> None:
    run(make_config(*SMALL_CHAIN))
    (tmp_path / "run" / "evaluate" / "result.json").unlink()
    result = run(make_config(*SMALL_CHAIN, f"resume={tmp_path / 'run'}"))
    assert [phase["status"] for phase in result["phases"]] == ["finished earlier", "ran"]


def test_a_phase_can_be_replaced_by_an_artifact_path(make_config, tmp_path: Path) -> None:
    run(make_config(*SMALL_CHAIN, output_dir=tmp_path / "first"))
    checkpoint = json.loads((tmp_path / "first" / "fit" / "result.json").read_text())["artifacts"]["best_checkpoint"]
    result = run(make_config(*SMALL_CHAIN, f"+phases.fit.use={checkpoint}", output_dir=tmp_path / "second"))
    assert [phase["status"] for phase in result["phases"]] == ["given", "ran"]
    assert not (tmp_path / "second" / "fit").exists()


def test_a_phase_without_experiment_is_a_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match="phases.broken"):
        run(make_config(*TINY, "phases={broken:{inputs:{}}}"))


def test_an_input_from_a_later_phase_is_a_clear_error(make_config) -> None:
    chain = "phases={a:{experiment:nas_train_digits,inputs:{ckpt_path:b.best_checkpoint}},b:{experiment:nas_train_digits}}"
    with pytest.raises(ConfigError, match="does not run before it"):
        run(make_config(*TINY, "trainer.max_epochs=1", chain))


def test_group_choices_reach_every_phase_that_has_the_group(make_config) -> None:
    """``debug=limit`` and ``trainer=ddp_cpu`` (groups of conf/run.yaml) reach every phase, as if typed for each;
    ``model/backbone=resnet56`` only the classifier (the other phases have no backbone group), with a warning."""
    plan = plan_overrides(make_config("experiment=logit_defense_digits"),
                          ["debug=limit", "trainer=ddp_cpu", "model/backbone=resnet56"])
    for name in ("classifier", "attack", "defender", "evaluate"):
        assert (plan.choices[name]["debug"], plan.choices[name]["trainer"]) == ("limit", "ddp_cpu")
        assert plan.configs[name].trainer.devices == 2 and plan.configs[name].trainer.max_epochs == 2
    assert plan.choices["classifier"]["model/backbone"] == "resnet56"
    assert plan.inherited["attack"] == ["debug=limit", "trainer=ddp_cpu"]
    assert plan.skipped == {"model/backbone=resnet56": (["attack", "defender", "evaluate"],
                                                        "the config group `model/backbone` is not used there")}
    [warning] = plan.warnings()
    assert warning.startswith("Command-line override `model/backbone=resnet56` skips phases attack, defender, "
                              "evaluate") and "it reaches classifier" in warning


def test_debug_fast_reaches_the_phases_of_a_chain(make_config) -> None:
    """``debug=fast`` leaves no key behind (a _global_ group), yet every stage and the training phase get it."""
    plan = plan_overrides(make_config("experiment=pdarts_digits_search_and_train", "debug=fast"))
    assert list(plan.configs) == ["stage1", "stage2", "stage3", "train"]
    for config in plan.configs.values():
        assert config.trainer.limit_train_batches == 1 and config.trainer.max_epochs == 1
        assert config.trainer.fast_dev_run is False  # checkpoints and loggers stay on: artifacts are written
    assert not plan.skipped


def test_a_key_a_group_choice_brings_reaches_the_phases(make_config) -> None:
    """``debug=limit trainer.limit_train_batches=5``: the command line wins over the group's value, in every phase."""
    plan = plan_overrides(make_config("experiment=pfs_digits"), ["debug=limit", "trainer.limit_train_batches=5"])
    assert [config.trainer.limit_train_batches for config in plan.configs.values()] == [5, 5, 5]
    assert not plan.skipped


def test_plus_overrides_reach_the_phases_that_have_or_take_the_key(make_config) -> None:
    """``++model.compile`` reaches the P-DARTS stages (their module takes it), not the training phase (a warning);
    a ``+`` trainer key every phase (Lightning's Trainer takes it)."""
    plan = plan_overrides(make_config("experiment=pdarts_digits_search_and_train"),
                          ["++model.compile=aot_eager", "+trainer.inference_mode=false", "trainer.limit_val_batches=1"])
    assert plan.configs["stage2"].model.compile == "aot_eager" and "compile" not in plan.configs["train"].model
    for config in plan.configs.values():
        assert (config.trainer.inference_mode, config.trainer.limit_val_batches) == (False, 1)
    [warning] = plan.warnings()
    assert "`++model.compile=aot_eager` skips phase train" in warning and "stage1, stage2, stage3" in warning


def test_an_override_that_reaches_no_phase_stops_the_chain_before_anything_is_written(make_config,
                                                                                      tmp_path: Path) -> None:
    cfg = make_config("experiment=pdarts_digits", "model.auxiliary_weight=0")  # the chain's root has it, no stage
    with pytest.raises(ConfigError) as error:
        run(cfg)
    message = str(error.value)
    assert message.startswith("`model.auxiliary_weight=0` reaches no phase of this chain")
    assert "(stage1, stage2, stage3)" in message and "phases.<name>.overrides" in message and "\n" not in message
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match=r"`\+\+model.not_an_argument=1` reaches no phase .* takes it as an arg"):
        plan_overrides(cfg, ["++model.not_an_argument=1"])
    with pytest.raises(ConfigError, match="`model/backbone=resnet56` reaches no phase .* config group `model/backbone`"):
        plan_overrides(cfg, ["model/backbone=resnet56"])


def test_a_key_the_chain_itself_reads_is_no_error(make_config) -> None:
    """``stage_experiment`` is read by the P-DARTS chain's ``phases``, not by a stage."""
    plan = plan_overrides(make_config("experiment=pdarts_digits"), ["stage_experiment=pdarts_stage_digits"])
    assert not plan.skipped and all(not overrides for overrides in plan.inherited.values())


def test_a_phase_without_a_value_for_its_experiment_is_a_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match=r"`phases.stage1.experiment` has no value"):
        run(make_config("experiment=pdarts/chain"))


def test_show_phases_shows_each_phases_debug_and_trainer_settings(make_config) -> None:
    stream = io.StringIO()
    show_phases(make_config("experiment=pfs_digits", "debug=fast", "retrain_epochs=2"), stream)
    text = stream.getvalue()
    headers = [line for line in text.splitlines() if line.startswith("#   debug=")]
    assert len(headers) == 3
    for line in headers:
        assert line.startswith("#   debug=fast trainer=default logger=csv | trainer: ")
        assert " max_epochs=1 " in line and " limit_train_batches=1 " in line and "fast_dev_run" not in line
    assert text.count("# warning: Command-line override `retrain_epochs=2` skips phases learn, prune") == 1
    assert "#   from the command line: " in text and "retrain_epochs=2" in text.split("# phase retrain")[1]


def test_an_override_that_reaches_no_phase_is_one_error_line_from_run_py(tmp_path: Path) -> None:
    completed = run_cli("experiment=pdarts_digits", "model.auxiliary_weight=0", cwd=tmp_path, timeout=300)
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "`model.auxiliary_weight=0` reaches no phase of this chain" in errors[0]
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "logs").exists()  # stopped where a mistyped key stops: before the run directory
