"""benchmarks/sbir_evaluation.py at a tiny size: runs, prints JSON, and both paths agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_sbir_evaluation_benchmark_runs_at_a_tiny_size() -> None:
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "sbir_evaluation.py"), "--queries", "60",
                           "--gallery", "300", "--classes", "5"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["same_result"] is True and 0 < report["mAP_all"] <= 1 and report["loop_queries"] == 60
