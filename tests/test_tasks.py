"""Phase tasks: a step that trains nothing runs as a function, alone or inside a chain, and writes result.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import DictConfig

from visionsuite.errors import ConfigError
from visionsuite.pipeline import run, run_job
from visionsuite.tasks import TaskResult


def count_words(cfg: DictConfig, output_dir: Path, text: str) -> TaskResult:
    """A task of the test: writes a file from its option and a config value, returns it as an artifact."""
    path = output_dir / "words.txt"
    path.write_text(f"{text} {cfg.seed}\n")
    return TaskResult(metrics={"words": float(len(text.split()))}, artifacts={"words": str(path)},
                      notes={"text": text})


def not_a_result(cfg: DictConfig, output_dir: Path) -> dict:
    return {"metrics": {}}


TASK = "task={_target_:tests.test_tasks.count_words,_partial_:true,text:'one two three'}"


def test_a_task_runs_instead_of_a_trainer_and_writes_its_result(make_config, tmp_path: Path) -> None:
    cfg = make_config("experiment=nas_train_digits", TASK, "seed=7")
    result = run_job(cfg, announce=False)
    assert result["metrics"] == {"words": 3.0}
    assert Path(result["artifacts"]["words"]).read_text() == "one two three 7\n"
    assert json.loads((tmp_path / "run" / "result.json").read_text())["artifacts"] == result["artifacts"]
    assert not (tmp_path / "run" / "checkpoints").exists()  # no Trainer ran


def test_a_task_hands_its_artifacts_to_a_later_phase(make_config, tmp_path: Path) -> None:
    cfg = make_config("experiment=nas_train_digits",
                      "+phases={words:{experiment:nas_train_digits,overrides:[\"" + TASK.replace('"', '\\"') + "\"]},"
                      "again:{experiment:nas_train_digits,inputs:{task.text:words.words},"
                      "overrides:[\"task={_target_:tests.test_tasks.count_words,_partial_:true,text:x}\"]}}")
    result = run(cfg)
    handed = (tmp_path / "run" / "words" / "words.txt")
    assert result["artifacts"]["again.words"] == str(tmp_path / "run" / "again" / "words.txt")
    assert (tmp_path / "run" / "again" / "words.txt").read_text() == f"{handed} {cfg.seed}\n"


def test_a_task_refuses_other_modes_and_must_return_a_task_result(make_config) -> None:
    with pytest.raises(ConfigError, match="mode=test: experiment .* is a task"):
        run_job(make_config("experiment=nas_train_digits", TASK, "mode=test"), announce=False)
    with pytest.raises(ConfigError, match="returned dict, not a TaskResult"):
        run_job(make_config("experiment=nas_train_digits", "task={_target_:tests.test_tasks.not_a_result,_partial_:true}"),
                announce=False)
