"""An override Hydra refuses ends with one `error:` line naming it and what to type, and exit code 2."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import CONFIG_DIR, run_cli
from visionsuite.cli import compose_for, refused_override_message


def hydra_refusal(overrides: list[str]) -> str:
    """The text Hydra reports for ``overrides`` (what run.py holds back while Hydra composes)."""
    try:
        compose_for(CONFIG_DIR, overrides)
    except Exception as error:  # noqa: BLE001 (whatever Hydra raises is what it would print)
        return f"{error}\n{error.__cause__ or ''}"
    raise AssertionError(f"Hydra accepted {overrides}")


@pytest.mark.parametrize("overrides,expected", [
    (["trainer=gpuu"], r"^`trainer=gpuu`: `trainer` has no option `gpuu`\. Did you mean `trainer=gpu`.*Options: cpu, "),
    (["experiment=nas_train_digit"], r"Did you mean `experiment=nas_train_digits`.*\(\d+ in all\)\.$"),
    (["experiment=classify_cifar10", "model/backbone=resnet5"], r"`model/backbone=resnet5`: .*`model/backbone=resnet56`"),
    (["experiment=nas_train_digits", "model/backbone=resnet56"],
     r"does not use the config group `model/backbone`.*\+model/backbone=resnet56"),
    (["+trainer.max_epochs=3"], r"^`\+trainer\.max_epochs`: .*already a key.*trainer\.max_epochs=\.\.\. \(or \+\+"),
    (["~trainer.max_epoch"], r"^`~trainer\.max_epoch`: this config has no key .*Did you mean `trainer\.max_epochs`"),
    (["trainer.max_epochs=[1"], r"^`trainer\.max_epochs=\[1` is not a valid override \(.*\)\. Write key=value; quote"),
    (["trainer.max_epoch=2"], r"^`trainer\.max_epoch` is not a key of this config\. Did you mean `trainer\.max_epochs`"),
])
def test_each_refusal_becomes_one_message_naming_the_override(overrides: list[str], expected: str) -> None:
    message = refused_override_message(hydra_refusal(overrides), overrides, CONFIG_DIR)
    assert message is not None
    assert "\n" not in message
    assert re.search(expected, message), message


def test_other_failures_are_left_to_hydra() -> None:
    assert refused_override_message("Some other failure", ["a=b"], CONFIG_DIR) is None


def test_run_py_exits_2_with_one_error_line(tmp_path: Path) -> None:
    result = run_cli("trainer=gpuu", "mode=summary", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: `trainer=gpuu`"), result.stderr
    assert not (tmp_path / "logs").exists()


def test_a_gpu_trainer_without_a_gpu_names_the_trainer_and_the_fix(make_config, monkeypatch) -> None:
    import torch

    from visionsuite.errors import ConfigError
    from visionsuite.instantiate import build_trainer

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"trains on a GPU \(trainer=gpu: trainer\.accelerator=gpu\).*add trainer=cpu"):
        build_trainer(make_config("experiment=nas_train_digits", "trainer=gpu", "trainer.accelerator=gpu"))
