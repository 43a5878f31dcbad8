"""The benchmark scripts run and print the JSON they promise (tiny sizes; their timings are not checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import REPO_ROOT


def run_benchmark(script: str, *arguments: str) -> dict:
    completed = subprocess.run([sys.executable, f"benchmarks/{script}", *arguments], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def test_search_iteration_reports_every_part() -> None:
    report = run_benchmark("search_iteration.py", "--device", "cpu", "--batch-size", "2", "--init-channels", "8",
                           "--layers", "3", "--image-size", "8", "--repeats", "1", "--warmup", "0")
    assert set(report["modes"]) == {"first_order", "second_order", "amended"}
    assert report["modes"]["amended"]["target_time_vs_first_order"] == 3.1
    assert len(report["modes"]["amended"]["time_vs_first_order_per_round"]) == 1  # one round per repeat
    predicted = report["pass_cost_model"]["predicted_time_vs_first_order"]
    assert predicted["first_order"] == 1.0 and predicted["amended"] > predicted["second_order"] > 1.0
    pc = report["pcdarts_vs_darts"]
    assert 0 < pc["activation_memory_vs_darts"] < 0.5  # a quarter of the channels through the mixed ops
    assert pc["time_vs_darts_per_round"] == [pc["time_vs_darts"]]
    assert set(report["pdarts_stages_first_order"]) == {"stage1", "stage2", "stage3"}


def test_train_throughput_compares_lightning_with_a_plain_loop() -> None:
    report = run_benchmark("train_throughput.py", "--steps", "2", "--warmup", "1", "--batch-size", "4",
                           "--init-channels", "4", "--layers", "3")
    assert report["plain_images_per_s"] > 0 and report["lightning_images_per_s"] > 0


def test_corner_pooling_benchmark_runs() -> None:
    report = run_benchmark("corner_pooling.py", "--size", "8", "--channels", "2", "--repeats", "1",
                           "--naive-size", "4", "--device", "cpu")
    assert report


def test_search_kernels_lists_the_top_operators_of_each_setting() -> None:
    report = run_benchmark("search_kernels.py", "--device", "cpu", "--batch-size", "2", "--init-channels", "8",
                           "--layers", "3", "--image-size", "8", "--repeats", "1", "--top", "3")
    for setting in ("fp32", "bf16_cudnn", "cl_bf16_cudnn", "cl_fp32_cudnn"):
        for network in ("darts", "pcdarts_k4"):
            entry = report[f"{setting}/{network}"]
            assert len(entry["seconds"]) == 1 and entry["median_seconds"] > 0
    profiled = report["fp32/pcdarts_k4"]
    assert len(profiled["top"]) == 3 and profiled["kernel_ms_total"] > 0
    assert profiled["top"][0][2] >= profiled["top"][1][2] >= profiled["top"][2][2]  # largest first
