"""benchmarks/pruning_cost.py runs at a tiny size and prints the JSON it promises (timings not checked)."""

from __future__ import annotations

from tests.test_benchmarks import run_benchmark


def test_pruning_cost_reports_every_phase_and_both_pipelines() -> None:
    report = run_benchmark("pruning_cost.py", "--backbone", "resnet20", "--expansion", "1.0", "--batch-size", "2",
                           "--steps", "1", "--warmup", "0", "--bisection-backbone", "resnet20",
                           "--bisection-expansion", "2.0", "--threads", "1")
    assert set(report["epoch_seconds"]) == {"gate_learning_expanded", "training_unexpanded", "training_pfs_pruned",
                                            "training_baseline_pruned"}
    assert report["bisection"]["bisection_seconds"] > 0 and abs(report["bisection"]["achieved"] - 0.5) < 0.005
    hours = report["pipeline_hours"]
    assert hours["pruning_from_scratch"]["total"] > 0 and hours["conventional"]["total"] > 0
    assert "retrain_scratch_b_320_epochs" in hours["pruning_from_scratch"]
