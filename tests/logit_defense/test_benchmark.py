"""The logit-dataset throughput benchmark runs at a tiny size and prints the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_logit_dataset_throughput_reports_both_paths() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "logit_dataset_throughput.py"), "--batch-size", "4",
         "--batches", "1", "--rounds", "1", "--steps", "1", "--image-size", "16", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["benchmark"] == "logit_dataset_throughput" and report["pgd_steps"] == 1
    assert report["torchattacks_images_per_s"] > 0 and report["logit_dataset_images_per_s"] > 0
    assert isinstance(report["within_target"], bool) and len(report["overhead_percent_per_round"]) == 1
