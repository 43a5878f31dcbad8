"""The one-command chain: classifier (given) -> attack -> defender -> evaluate, artifacts passed by phases.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.logit_defense.conftest import IMAGE_SIZE
from visionsuite.errors import ConfigError
from visionsuite.pipeline import run


@pytest.mark.parametrize("dataset", ["digits", "cifar10", "imagenet"])
def test_chain_experiments_compose(make_config, dataset: str) -> None:
    cfg = make_config(f"experiment=logit_defense_{dataset}")
    assert list(cfg.phases) == ["classifier", "attack", "defender", "evaluate"]
    assert cfg.phases.evaluate.inputs.ckpt_path == "defender.best_checkpoint"
    assert cfg.model.attacks.pgd.steps == 10 and cfg.model.attacks.pgd.eps == pytest.approx(16 / 255)


def test_chain_runs_every_phase_with_a_given_classifier(make_config, classifier_checkpoint: Path, tmp_path: Path,
                                                        quiet_threads) -> None:
    cfg = make_config("experiment=logit_defense_digits", f"phases.classifier.use={classifier_checkpoint}",
                      f"data.images.image_size={IMAGE_SIZE}", "data.max_samples_per_split=64", "data.shard_size=64",
                      "model.attacks.pgd.steps=2", "~model.attacks.cw_l2", "trainer.max_epochs=2")
    result = run(cfg)
    assert [phase["status"] for phase in result["phases"]] == ["given", "ran", "ran", "ran"]
    evaluate = json.loads((tmp_path / "run" / "evaluate" / "result.json").read_text())
    assert {"test/undefended/pgd", "test/pgd/fgsm", "test/adaptive/pgd"} <= set(evaluate["metrics"])
    assert Path(result["artifacts"]["evaluate.transfer_heatmap"]).is_file()
    manifest = json.loads((tmp_path / "run" / "attack" / "logits" / "manifest.json").read_text())
    assert manifest["classifier"]["checkpoint"] == str(classifier_checkpoint)


def test_attack_without_classifier_is_a_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match=r"^model.classifier.checkpoint is not set"):
        run(make_config("experiment=logit_defense_attack_digits"))
