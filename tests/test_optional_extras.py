"""Skip conditions of optional extras must not raise on a machine without them (issue: fresh-machine pytest)."""

from __future__ import annotations

import ast
import importlib.abc
import sys
from pathlib import Path

import pytest

from tests.optional import module_available

TESTS = Path(__file__).resolve().parent


class _HideModules(importlib.abc.MetaPathFinder):
    """A finder that makes ``hidden`` (and everything under it) unimportable, as on a fresh machine."""

    def __init__(self, hidden: str) -> None:
        self.hidden = hidden

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == self.hidden or name.startswith(self.hidden + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def without_hydra_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name == "hydra_plugins" or name.startswith("hydra_plugins.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_HideModules("hydra_plugins"), *sys.meta_path])


def test_absent_parent_package_means_not_available(without_hydra_plugins: None) -> None:
    with pytest.raises(ModuleNotFoundError):
        import hydra_plugins  # noqa: F401
    assert module_available("hydra_plugins.hydra_optuna_sweeper") is False
    assert module_available("hydra_plugins") is False


def test_present_module_is_available() -> None:
    assert module_available("json") is True
    assert module_available("json.decoder") is True
    assert module_available("json.no_such_submodule") is False


def test_cli_tests_collect_without_hydra_plugins(without_hydra_plugins: None) -> None:
    """Importing the test module that skips on the optuna / slurm extras must work with no plugin at all."""
    sys.modules.pop("tests.test_cli", None)
    import tests.test_cli as cli_tests

    marks = [mark for function in (cli_tests.test_optuna_sweep_runs_trials, cli_tests.test_slurm_launcher_config_composes)
             for mark in function.pytestmark if mark.name == "skipif"]
    assert marks and all(mark.args[0] is True for mark in marks)
    sys.modules.pop("tests.test_cli", None)


def test_no_test_file_calls_find_spec_on_a_dotted_name_directly() -> None:
    offenders = []
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "find_spec" and node.args
                    and isinstance(node.args[0], ast.Constant) and "." in str(node.args[0].value)):
                offenders.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert not offenders, f"use tests.optional.module_available instead of find_spec at {offenders}"
