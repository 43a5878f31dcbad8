"""The phase mechanism: several experiments in one command, each resumable and runnable from an artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_train_pipeline import TINY
from visionsuite.errors import ConfigError
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


def test_group_overrides_from_the_command_line_reach_the_phases_that_have_the_group(make_config) -> None:
    """``model/backbone=resnet56`` on a chain reaches the phases whose model has a backbone, and no other."""
    from visionsuite.phases import _applies_to

    classifier = make_config("experiment=augrefine_heavy_digits")
    search = make_config("experiment=darts_digits")
    assert _applies_to("model/backbone=resnet56", classifier)
    assert not _applies_to("model/backbone=resnet56", search)
    assert _applies_to("trainer=ddp_cpu", search)
    assert _applies_to("model/scheduler=cosine", classifier)
