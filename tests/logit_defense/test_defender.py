"""Defender and evaluate phases: the paper's defender, its recovery under PGD, the transfer matrix, the
adaptive white-box attack, mode=predict on a logit file, and bad inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.logit_dataset import read_split
from networks.defense.logit_defender import DefenderBank, LogitDefender
from tests.logit_defense.conftest import IMAGE_SIZE
from tests.logit_defense.helpers import attack_overrides
from visionsuite.errors import ConfigError, DatasetError
from visionsuite.pipeline import run_job


def test_defender_is_the_papers_mlp() -> None:
    defender = LogitDefender(10)
    layers = [type(layer).__name__ for layer in defender.layers]
    assert layers == ["Linear", "ReLU", "Dropout", "Linear"]
    assert defender.layers[0].out_features == 2048 and defender.layers[2].p == 0.5
    # Kaiming-normal init: weight std close to sqrt(2 / fan_in).
    assert defender.layers[0].weight.std().item() == pytest.approx((2 / 10) ** 0.5, rel=0.1)
    bank = DefenderBank(["pgd", "fgsm"], 10).eval()
    logits = torch.randn(5, 10)
    assert bank(logits).shape == (2, 5, 10)
    assert torch.equal(bank(logits)[1], bank["fgsm"](logits))


@pytest.fixture(scope="module")
def pipeline_runs(tmp_path_factory: pytest.TempPathFactory, classifier_checkpoint: Path) -> dict[str, Path]:
    """Attack (PGD-5 and FGSM on 419 train / 271 test digits) -> defender (300 epochs, the demo's) -> evaluate."""
    from tests.helpers import compose_config

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pipeline")
    attack = run_job(compose_config([*attack_overrides(classifier_checkpoint, samples=600, steps=5),
                                     "data.shard_size=256"], root / "attack"))
    logits = attack["artifacts"]["logits"]
    defender = run_job(compose_config(["experiment=logit_defense_defender_digits", f"data.logit_dir={logits}",
                                       "trainer.max_epochs=300"], root / "defender"))
    evaluate_overrides = ["experiment=logit_defense_evaluate_digits", f"data.logit_dir={logits}",
                          f"ckpt_path={defender['artifacts']['best_checkpoint']}",
                          f"model.classifier.checkpoint={classifier_checkpoint}",
                          f"data.images.image_size={IMAGE_SIZE}", "model.adaptive_attack.steps=5"]
    evaluate = run_job(compose_config(evaluate_overrides, root / "evaluate"))
    torch.set_num_threads(previous)
    return {"logits": Path(logits), "defender": Path(defender["artifacts"]["best_checkpoint"]),
            "evaluate": Path(evaluate["output_dir"]), "metrics": evaluate["metrics"],
            "evaluate_overrides": evaluate_overrides, "root": root}


def test_defender_recovers_accuracy_under_pgd(pipeline_runs) -> None:
    metrics = pipeline_runs["metrics"]
    undefended, defended = metrics["test/undefended/pgd"], metrics["test/pgd/pgd"]
    assert defended > undefended + 0.15, (undefended, defended)
    assert metrics["test/pgd/clean"] > metrics["test/undefended/clean"] - 0.15  # the clean-accuracy cost stays small


def test_evaluation_writes_the_transfer_matrix_and_the_adaptive_attack(pipeline_runs) -> None:
    run_dir = pipeline_runs["evaluate"]
    result = json.loads((run_dir / "result.json").read_text())
    for trained in ("pgd", "fgsm"):
        for evaluated in ("clean", "pgd", "fgsm"):
            assert 0.0 <= result["metrics"][f"test/{trained}/{evaluated}"] <= 1.0
        assert 0.0 <= result["metrics"][f"test/adaptive/{trained}"] <= 1.0
    transfer = json.loads((run_dir / "transfer.json").read_text())
    assert set(transfer["transfer"]) == {"pgd", "fgsm"} and set(transfer["transfer"]["pgd"]) == {"pgd", "fgsm"}
    table = (run_dir / "transfer.md").read_text()
    assert "Transfer matrix" in table and "Adaptive white-box attack" in table
    assert (run_dir / "transfer_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["artifacts"]["transfer_heatmap"].endswith("transfer_heatmap.png")
    # The numbers agree with the logit dataset: the classifier alone under PGD.
    test = read_split(pipeline_runs["logits"], "test")
    assert result["metrics"]["test/undefended/pgd"] == pytest.approx((test["adv"][:, 0].argmax(1) == test["label"]).mean())


def test_predict_corrects_a_logit_file_without_images(pipeline_runs, make_config, tmp_path: Path) -> None:
    test = read_split(pipeline_runs["logits"], "test")
    np.savez(tmp_path / "served.npz", logits=test["adv"][:, 0], label=test["label"])
    result = run_job(make_config("experiment=logit_defense_defender_digits", "mode=predict",
                                 f"ckpt_path={pipeline_runs['defender']}", f"data.predict_path={tmp_path / 'served.npz'}"))
    predictions = np.load(result["artifacts"]["predictions"])
    assert predictions["defended"].shape == (len(test["label"]), 2)
    accuracy = (predictions["defended"][:, 0] == test["label"]).mean()
    assert accuracy == pytest.approx(pipeline_runs["metrics"]["test/pgd/pgd"], abs=1e-6)
    assert Path(result["artifacts"]["predictions_csv"]).read_text().startswith("row,source,label,undefended")


def test_a_logit_file_of_another_class_count_is_refused(pipeline_runs, make_config, tmp_path: Path) -> None:
    np.save(tmp_path / "five.npy", np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(DatasetError, match="five.npy holds logits of 5 classes but the defender has 10"):
        run_job(make_config("experiment=logit_defense_defender_digits", "mode=predict",
                            f"ckpt_path={pipeline_runs['defender']}", f"data.predict_path={tmp_path / 'five.npy'}"))
    with pytest.raises(DatasetError, match="holds logits of 10 classes but the defender has 7"):
        run_job(make_config("experiment=logit_defense_defender_digits", f"data.logit_dir={pipeline_runs['logits']}",
                            "model.net.num_classes=7"))


def test_a_defender_checkpoint_must_hold_the_defenders_model_net_builds(pipeline_runs, make_config) -> None:
    """The checkpoint's attacks are taken unless model.net.attack_names says otherwise; then loading refuses it."""
    with pytest.raises(ConfigError, match=r"holds defenders for \['pgd', 'fgsm'\] but model.net.attack_names is "
                                          r"\['fgsm'\]"):
        run_job(make_config(*pipeline_runs["evaluate_overrides"], "model.adaptive_attack=null",
                            "model.net.attack_names=[fgsm]"))


def test_a_logit_dataset_of_another_classifier_warns_naming_both(pipeline_runs, make_config, tmp_path: Path) -> None:
    other = tmp_path / "other.ckpt"
    original = Path(pipeline_runs["evaluate_overrides"][3].split("=", 1)[1])
    state = torch.load(original, map_location="cpu", weights_only=False)
    state["state_dict"] = {key: value + 0.01 if value.is_floating_point() else value
                           for key, value in state["state_dict"].items()}
    torch.save(state, other)
    overrides = [*pipeline_runs["evaluate_overrides"][:3], f"model.classifier.checkpoint={other}",
                 *pipeline_runs["evaluate_overrides"][4:], "model.adaptive_attack=null"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_job(make_config(*overrides))
    messages = [str(warning.message) for warning in caught if "was made by the classifier" in str(warning.message)]
    assert messages and str(original) in messages[0] and str(other) in messages[0]
