"""AugRefine (arXiv:1909.09148) end to end at test size: heavy phase, refine phase, refine alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lightning_modules.classification import ImageClassifier
from tests.classification.helpers import TINY_LOOPS
from tests.helpers import compose_config
from visionsuite.errors import ConfigError
from visionsuite.pipeline import run

TINY_WIDTH = "model.net.width_multiplier=0.25"


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny augrefine_digits chain (heavy then refine) shared by the tests of this file."""
    run_dir = tmp_path_factory.mktemp("augrefine") / "run"
    run(compose_config(["experiment=augrefine_digits", TINY_WIDTH, *TINY_LOOPS], run_dir))
    return run_dir


def test_the_chain_runs_heavy_then_refine_from_the_heavy_weights(chain_dir: Path) -> None:
    heavy = json.loads((chain_dir / "heavy" / "result.json").read_text())
    refine = json.loads((chain_dir / "refine" / "result.json").read_text())
    assert "test/acc1" in heavy["metrics"] and "test/acc1" in refine["metrics"]  # before and after refinement
    heavy_config = (chain_dir / "heavy" / "config.yaml").read_text()
    refine_config = (chain_dir / "refine" / "config.yaml").read_text()
    assert "augment: autoaugment_cutout" in heavy_config
    assert "augment: standard" in refine_config and "paired_augment: autoaugment_cutout" in refine_config
    assert f"init_from: {heavy['artifacts']['last_checkpoint']}" in refine_config
    chain = json.loads((chain_dir / "result.json").read_text())
    assert [phase["status"] for phase in chain["phases"]] == ["ran", "ran"]


def test_the_refine_phase_logs_and_draws_the_clean_and_augmented_losses(chain_dir: Path) -> None:
    refine = json.loads((chain_dir / "refine" / "result.json").read_text())
    for name in ("train/loss_clean_epoch", "train/loss_augmented_epoch", "train/loss_gap_epoch"):
        assert name in refine["metrics"]
    metrics_csv = next((chain_dir / "refine" / "csv").rglob("metrics.csv")).read_text().splitlines()[0]
    assert "train/loss_clean_epoch" in metrics_csv and "train/loss_augmented_epoch" in metrics_csv
    picture = Path(refine["artifacts"]["augmentation_gap_plot"])
    assert picture.parent == chain_dir / "refine" and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = Path(refine["artifacts"]["augmentation_gap_table"]).read_text().splitlines()
    assert table[0] == "step,epoch,loss_clean,loss_augmented" and len(table) == 1 + 2  # two tiny steps


def test_a_finished_chain_resumes_without_rerunning_its_phases(chain_dir: Path) -> None:
    result = run(compose_config(["experiment=augrefine_digits", TINY_WIDTH, *TINY_LOOPS, f"resume={chain_dir}"],
                                chain_dir))
    assert [phase["status"] for phase in result["phases"]] == ["finished earlier", "finished earlier"]


def test_refine_alone_adopts_the_checkpoint_backbone(chain_dir: Path, tmp_path: Path) -> None:
    checkpoint = json.loads((chain_dir / "heavy" / "result.json").read_text())["artifacts"]["last_checkpoint"]
    run(compose_config(["experiment=augrefine_refine", "data=digits", *TINY_LOOPS, f"ckpt_path={checkpoint}"],
                       tmp_path / "refine_alone"))
    refined = json.loads((tmp_path / "refine_alone" / "refine" / "result.json").read_text())
    model = ImageClassifier.load_from_checkpoint(refined["artifacts"]["last_checkpoint"])
    assert model.hparams.backbone == {"name": "resnet20", "options": {"width_multiplier": 0.25}}
    assert torch.isfinite(torch.tensor(refined["metrics"]["test/acc1"]))


def test_refine_alone_without_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refine phase needs a trained classifier.*ckpt_path="):
        run(compose_config(["experiment=augrefine_refine", "data=digits", *TINY_LOOPS], tmp_path / "run"))
