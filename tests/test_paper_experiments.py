"""The paper experiments' dry runs (``benchmarks/paper_experiments.py``): which experiments they are, one of each
method family through the benchmark's own run in the default set, every one in the ``slow`` set, and the script's
JSON. Nothing here depends on timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.paper_experiments import chain_phases, paper_experiments, run_experiment
from datamodules.writers.paper import paper_datasets
from tests.helpers import REPO_ROOT

PAPER = paper_experiments()
# The cheapest paper experiment, which the script's own test runs (it is the classification family's dry run).
CHEAPEST = "classify_cifar10"
# The default run: the smallest paper experiment of each other family, one training step each, at a batch that keeps
# the paper's composition where the sampler needs one (MCNL: one identity per camera, K=2; SAKE: 1 sketch, 2 photos).
FAMILY_DRY_RUNS: dict[str, tuple[str, list[str]]] = {
    "architecture search": ("pcdarts_cifar10", ["++data.batch_size=4"]),
    "pruning": ("pfs_baseline_resnet56_cifar10", ["++data.batch_size=4"]),
    "augrefine": ("augrefine_resnet56_cifar10", ["++data.batch_size=4"]),
    "logit defense": ("logit_defense_cifar10", ["++data.batch_size=4"]),
    "re-id": ("mcnl_market_sct", ["++data.batch_size=12", "data.images_per_identity=2"]),
    "sbir": ("sake_sketchy", ["++data.batch_size=3"]),
    "segmentation": ("plain2d_msd_pancreas", ["++data.batch_size=2"]),
}
# CenterNet (the 52-layer hourglass at 511x511) costs minutes on a CPU: it runs in the slow set only.


def test_the_paper_experiments_are_read_from_the_configs() -> None:
    named = {"nas_train_imagenet", "centernet104_coco", "pfs_resnet56_cifar10", "mcnl_market_sct", "sake_sketchy",
             "thickened2d_msd_hepatic_vessel", "logit_defense_cifar10", "augrefine_wrn28_cifar10"}
    assert named <= set(PAPER)
    assert {"darts_cifar10", "darts_cifar10_search_and_train", "nas_train_cifar100", "pcdarts_imagenet",
            "pdarts_cifar10", "classify_imagenet", "pfs_baseline_vgg16_cifar10", "unet3d_msd_pancreas",
            "triplet_duke_full", "sake_tuberlin"} <= set(PAPER)
    demos = {"classify_digits", "pdarts_digits", "centernet_shapes", "mcnl_demo", "sake_demo", "thickened2d_demo"}
    phases = {"pdarts_stage_cifar10", "pfs_cifar10_learn", "pfs_imagenet_prune", "pfs_baseline_cifar10_finetune",
              "logit_defense_attack_cifar10", "logit_defense_evaluate_imagenet", "augrefine_heavy_cifar10"}
    assert not (demos | phases) & set(PAPER)
    assert set(chain_phases("pdarts_cifar10_search_and_train")) == {"pdarts_stage_cifar10", "nas_train_cifar10"}
    for name in PAPER:  # each has its tiny dataset
        assert paper_datasets(name), name


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("paper_data")


def assert_dry_run(entry: dict, steps: int) -> None:
    """The run ended well and every phase that trained ran ``steps`` steps of a network with parameters."""
    assert entry["ok"], entry["error"]
    assert entry["phases"], "no phase recorded"
    trained = {name: cost for name, cost in entry["phases"].items() if cost["steps"]}
    assert trained, entry["phases"]
    for name, cost in trained.items():
        assert cost["steps"] == steps and cost["parameters"] > 0, (name, cost)
        assert cost["validated"] or cost["tested"], (name, cost)  # MCNL has no validation split: it tests


@pytest.mark.parametrize("family", list(FAMILY_DRY_RUNS))
def test_the_smallest_paper_experiment_of_each_family_runs(family: str, data_dir: Path, tmp_path: Path) -> None:
    experiment, overrides = FAMILY_DRY_RUNS[family]
    assert experiment in PAPER
    entry = run_experiment(experiment, data_dir, tmp_path / "run", steps=1, extra=overrides, threads=1)
    assert_dry_run(entry, steps=1)


def test_the_script_prints_its_json_for_one_experiment(data_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "benchmarks/paper_experiments.py", "--only", CHEAPEST, "--steps", "2",
         "--data-dir", str(data_dir), "--table"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert list(report["experiments"]) == [CHEAPEST] and report["device"].startswith("cpu")
    entry = report["experiments"][CHEAPEST]
    assert_dry_run(entry, steps=2)
    cost = entry["phases"][""]
    assert cost["parameters"] == 855_770 and cost["batch_size"] == 16  # ResNet-56 at 10 classes, the CPU batch
    assert cost["tested"] and cost["seconds_per_step"] > 0 and entry["peak_rss_mb"] > 0
    assert f"| `{CHEAPEST}` | ok |" in completed.stderr  # the table


@pytest.mark.slow
@pytest.mark.parametrize("experiment", PAPER)
def test_every_paper_experiment_runs_its_dry_run(experiment: str, data_dir: Path, tmp_path: Path) -> None:
    """The whole matrix at the benchmark's CPU settings (``python benchmarks/paper_experiments.py``)."""
    assert_dry_run(run_experiment(experiment, data_dir, tmp_path / "run"), steps=3)
