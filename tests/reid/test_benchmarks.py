"""The re-ID benchmark scripts run at a tiny size and print the JSON they promise."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import REPO_ROOT


def run_script(name: str, *args: str) -> dict:
    completed = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / name), *args], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(REPO_ROOT),
                                                                                 "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_reid_evaluation_agrees_with_the_loop() -> None:
    report = run_script("reid_evaluation.py", "--queries", "60", "--gallery", "400", "--repeats", "1")
    assert report["per_query_loop"]["max_cmc_difference"] == 0.0
    assert report["per_query_loop"]["map_difference"] < 1e-9
    if isinstance(report["torchreid"], str):  # optional extra absent: skipped with a reason
        assert report["torchreid"].startswith("skipped")
    else:  # torchreid present (pip install -e ".[reid-bench]"): its paths score the same problem identically
        paths = ["torchreid_python"] + (["torchreid_cython"] if report["torchreid"]["cython"] else [])
        for path in paths:
            assert report[path]["max_cmc_difference"] < 1e-6 and report[path]["map_difference"] < 1e-6


def test_mcnl_step_reports_loss_and_sampler_fractions() -> None:
    report = run_script("mcnl_step.py", "--batch-size", "24", "--images-per-identity", "2", "--height", "32",
                        "--width", "16", "--steps", "1")
    for name in ("mcnl", "triplet"):
        assert 0 < report[name]["loss_fraction_of_step"] and report[name]["sampler_seconds_per_batch"] > 0
