"""benchmarks/gpu_smoke.sh: every run it lists composes, and it covers every demo experiment."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.helpers import CONFIG_DIR, REPO_ROOT

SCRIPT = (REPO_ROOT / "benchmarks" / "gpu_smoke.sh").read_text()
# The demo experiments a GPU session must exercise (each method's one-command demo).
DEMOS = ("darts_digits", "amended_darts_digits", "pcdarts_digits", "pdarts_digits_search_and_train", "nas_train_digits",
         "centernet_shapes", "classify_digits", "augrefine_digits", "pfs_digits", "logit_defense_digits", "mcnl_demo",
         "triplet_demo", "sake_demo", "thickened2d_demo", "plain2d_demo", "unet3d_demo",
         "dynunet3d_demo")


def _variables() -> dict[str, str]:
    found = dict(re.findall(r'^([A-Z]+)="([^"]*)"$', SCRIPT, flags=re.MULTILINE))
    for name, value in found.items():  # expand references to earlier variables ($LOOPS inside $SEARCH)
        found[name] = re.sub(r"\$([A-Z]+)", lambda match: found.get(match.group(1), ""), value)
    return found


def smoke_runs() -> list[tuple[str, list[str]]]:
    block = SCRIPT.split("RUNS=(", 1)[1].split("\n)", 1)[0]
    variables = _variables()
    runs = []
    for name, overrides in re.findall(r'^\s*"([^|"]+)\|([^"]*)"', block, flags=re.MULTILINE):
        expanded = re.sub(r"\$([A-Z]+)", lambda match: variables[match.group(1)], overrides)
        runs.append((name, shlex.split(expanded)))
    return runs


RUNS = smoke_runs()


def test_every_demo_experiment_is_in_the_smoke_check() -> None:
    experiments = {override.split("=", 1)[1] for _, overrides in RUNS for override in overrides
                   if override.startswith("experiment=")}
    missing = [demo for demo in DEMOS if demo not in experiments]
    assert not missing, f"benchmarks/gpu_smoke.sh does not run {missing}"
    assert all((CONFIG_DIR / "experiment" / f"{demo}.yaml").is_file() for demo in DEMOS)


@pytest.mark.parametrize(("name", "overrides"), RUNS, ids=[name for name, _ in RUNS])
def test_smoke_run_composes(make_config, name: str, overrides: list[str]) -> None:
    cfg = make_config(*overrides)
    assert cfg.get("phases") or cfg.model._target_, name
