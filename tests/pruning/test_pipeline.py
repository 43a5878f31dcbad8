"""Pruning from Scratch end to end through run.py's config: the three phases of pfs_digits and of the conventional
baseline at test size, each phase alone from an artifact, and mode=summary of a structure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from networks.pruning.families import FAMILIES
from networks.pruning.structure import load_structure
from visionsuite.complexity import count_parameters
from visionsuite.pipeline import run

TINY = [
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
]


def _phase(run_dir: Path, name: str) -> dict:
    return json.loads((run_dir / name / "result.json").read_text())


def test_pfs_digits_learns_prunes_and_retrains(make_config, tmp_path: Path) -> None:
    # The retrain phase keeps its Scratch-B length: retrain_epochs=1 / (1 - 0.5) = 2 epochs.
    chain = [override for override in TINY if not override.startswith("trainer.max_epochs")]
    result = run(make_config("experiment=pfs_digits", *chain, "retrain_epochs=1",
                             "phases.learn.overrides=['trainer.max_epochs=1']"))
    run_dir = tmp_path / "run"
    assert [phase["status"] for phase in result["phases"]] == ["ran", "ran", "ran"]
    prune = _phase(run_dir, "prune")
    structure = load_structure(prune["artifacts"]["structure"])
    # One inner channel of the demo's ResNet-20 is ~3% of the reference's multiply-adds: the closest structure.
    assert abs(structure.achieved - 0.5) <= 0.03
    assert structure.criterion == "gates" and structure.width_multiplier == 1.0
    assert Path(prune["artifacts"]["structure_plot"]).is_file()
    assert "reduction" in Path(prune["artifacts"]["structure_table"]).read_text()
    retrain = _phase(run_dir, "retrain")
    assert "test/acc1" in retrain["metrics"] and "structure" not in retrain["artifacts"]
    checkpoint = torch.load(retrain["artifacts"]["last_checkpoint"], map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 4  # Scratch-B: 2 epochs of 2 batches
    pruned = FAMILIES["resnet20"].build(10, channels=structure.channels, width_multiplier=1.0)
    assert count_parameters(pruned) == structure.params


def test_gate_selection_ranks_validations_inside_one_pass(make_config, tmp_path: Path) -> None:
    """ImageNet's single pass validates every 500 steps: with no validation at <= r non-zero gates (r tiny here),
    the kept gates are the latest validated ones, not the first of the epoch (the official fallback: the last)."""
    result = run(make_config("experiment=pfs_digits_learn", "data.batch_size=16", "trainer.max_epochs=1",
                             "trainer.limit_train_batches=6", "++trainer.val_check_interval=2",
                             "trainer.limit_val_batches=1", "model.sparsity_level=0.01"))
    best = torch.load(result["artifacts"]["best_checkpoint"], map_location="cpu", weights_only=False)
    assert best["global_step"] == 6
    rows = (tmp_path / "run" / "csv" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    scores = [float(row.split(",")[header.index("val/gate_selection")]) for row in rows[1:]
              if row.split(",")[header.index("val/gate_selection")]]
    assert len(scores) == 3 and scores == sorted(scores) and len(set(scores)) == 3 and max(scores) < 0


@pytest.mark.slow  # test_gate_learning checks the same on a bare Trainer
def test_the_gate_checkpoint_keeps_the_random_weights(make_config, tmp_path: Path) -> None:
    run(make_config("experiment=pfs_digits_learn", *TINY))
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=False)["state_dict"]
    torch.manual_seed(42)  # the seed the run used before building the model
    from lightning_modules.pruning import GateLearning
    from networks.classification import build_backbone
    from networks.pruning.gates import ChannelGate

    fresh = GateLearning(build_backbone("resnet20", 10, width_multiplier=1.0, gate_layer=ChannelGate), num_classes=10)
    for name, value in fresh.state_dict().items():
        if name.endswith(".weight") and "net." in name:
            assert torch.equal(state[name], value), name
    assert any(not torch.all(state[n] == 1) for n in state if n.endswith(".gates"))


@pytest.mark.slow  # ~30 s on a quiet machine; the default run keeps the default CI under its time budget
def test_baseline_trains_prunes_by_bn_scale_and_finetunes(make_config, tmp_path: Path) -> None:
    run(make_config("experiment=pfs_baseline_digits", *TINY))
    run_dir = tmp_path / "run"
    structure = load_structure(_phase(run_dir, "prune")["artifacts"]["structure"])
    assert structure.criterion == "bn_scale" and structure.width_multiplier == 0.5
    assert abs(structure.achieved - 0.5) <= 0.03
    assert "test/acc1" in _phase(run_dir, "finetune")["metrics"]
    for trained in ("train", "finetune"):  # only the prune phase prunes what it tests
        assert "structure" not in _phase(run_dir, trained)["artifacts"]


@pytest.mark.parametrize("experiment", ["pfs_digits_retrain", "pfs_cifar10_retrain"])
def test_summary_of_a_structure_prints_its_size(make_config, tmp_path: Path, capsys, experiment: str) -> None:
    family = FAMILIES["resnet20"]
    from tests.pruning.test_bad_input import _structure

    path = _structure(tmp_path, channels=[3] * 9, kept=[[0, 1, 2]] * 9)
    result = run(make_config(f"experiment={experiment}", "model/backbone=resnet20", "mode=summary",
                             f"model.net.structure={path}"))
    expected = count_parameters(family.build(10, channels=[3] * 9, width_multiplier=0.5))
    assert result["metrics"]["params_m"] == round(expected / 1e6, 4)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["params_m"] == result["metrics"]["params_m"]
