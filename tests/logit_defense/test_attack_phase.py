"""The attack phase: writes the logit dataset, and an interrupted run resumes to the same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.logit_dataset import read_manifest, read_split
from networks.defense.classifier import file_sha256
from tests.logit_defense.helpers import SimulatedKill, attack_overrides
from visionsuite.errors import ConfigError
from visionsuite.pipeline import run_job


def logit_files(run_dir: Path) -> dict[str, bytes]:
    root = run_dir / "logits"
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_attack_phase_writes_the_logit_dataset(make_config, classifier_checkpoint: Path, tmp_path: Path,
                                               quiet_threads) -> None:
    result = run_job(make_config(*attack_overrides(classifier_checkpoint)))
    root = Path(result["artifacts"]["logits"])
    manifest = read_manifest(root)
    assert manifest["attack_names"] == ["pgd", "fgsm"]
    assert manifest["classifier"]["sha256"] == file_sha256(classifier_checkpoint)
    assert manifest["attacks"]["pgd"]["eps"] == pytest.approx(16 / 255)
    assert manifest["normalization"]["mean"] and manifest["splits"]["train"]["stride"] == 20  # 1257 images -> 64
    test = read_split(root, "test")
    assert test["adv"].shape == (len(test["label"]), 2, 10)
    clean_accuracy = (test["clean"].argmax(1) == test["label"]).mean()
    pgd_accuracy = (test["adv"][:, 0].argmax(1) == test["label"]).mean()
    assert clean_accuracy > 0.6 and pgd_accuracy < clean_accuracy - 0.3  # the attack works in pixel space
    assert "attack/test/pgd_acc" in result["metrics"]


def test_interrupted_attack_resumes_to_identical_files(make_config, classifier_checkpoint: Path, tmp_path: Path,
                                                       quiet_threads) -> None:
    overrides = attack_overrides(classifier_checkpoint)
    run_job(make_config(*overrides, output_dir=tmp_path / "whole"))
    kill = ["+callbacks.kill._target_=tests.logit_defense.helpers.StopAfterBatches", "+callbacks.kill.batches=2"]
    with pytest.raises(SimulatedKill):
        run_job(make_config(*overrides, *kill, output_dir=tmp_path / "resumed"))
    partial = logit_files(tmp_path / "resumed")
    assert len([name for name in partial if name.endswith(".npz")]) == 2  # two shards, no half-written file
    torch.manual_seed(1234)  # another global random state: the shards' seeds must not depend on it
    run_job(make_config(*overrides, output_dir=tmp_path / "resumed"))
    whole, resumed = logit_files(tmp_path / "whole"), logit_files(tmp_path / "resumed")
    assert whole.keys() == resumed.keys() and len(whole) == 1 + 2 + 2  # manifest + 2 train + 2 test shards
    assert all(whole[name] == resumed[name] for name in whole)


def test_bad_attack_entries_are_clear_errors(make_config, classifier_checkpoint: Path) -> None:
    base = attack_overrides(classifier_checkpoint)
    with pytest.raises(ConfigError, match="^model.attacks.pgd.name: unknown attack 'pgdd'; known attacks: cw_l2, "
                                          "deepfool, fgsm, pgd"):
        run_job(make_config(*base, "model.attacks.pgd.name=pgdd"))
    with pytest.raises(ConfigError, match=r"^model.attacks.pgd.eps=-0.1 is out of range.*>= 0"):
        run_job(make_config(*base, "model.attacks.pgd.eps=-0.1"))
    with pytest.raises(ConfigError, match=r"^model.attacks.pgd.steps=0 is out of range.*integer >= 1"):
        run_job(make_config(*base, "model.attacks.pgd.steps=0"))
    with pytest.raises(ConfigError, match=r"^model.attacks.pgd.epss: attack 'pgd' has no parameter 'epss'"):
        run_job(make_config(*base, "+model.attacks.pgd.epss=0.1"))


def test_a_classifier_checkpoint_that_does_not_load_is_a_clear_error(make_config, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"\x80\x02 this is not a checkpoint")
    with pytest.raises(ConfigError, match=r"^model.classifier.checkpoint=\S*broken.ckpt does not load as ImageClassifier"):
        run_job(make_config(*attack_overrides(broken)))
    with pytest.raises(ConfigError, match=r"^model.classifier.checkpoint=\S*missing.ckpt: no such file"):
        run_job(make_config(*attack_overrides(tmp_path / "missing.ckpt")))


def test_logits_are_computed_in_pixel_space(make_config, classifier_checkpoint: Path, quiet_threads) -> None:
    """The clean logits recorded equal the classifier's on the datamodule's normalised test images."""
    from datamodules.digits import DigitsDataModule
    from lightning_modules.classification import ImageClassifier

    result = run_job(make_config(*attack_overrides(classifier_checkpoint)))
    test = read_split(result["artifacts"]["logits"], "test")
    data = DigitsDataModule(image_size=16)
    data.setup()
    images = torch.stack([data.test_dataset[int(index)][0] for index in test["index"]])
    model = ImageClassifier.load_from_checkpoint(classifier_checkpoint, map_location="cpu").eval()
    with torch.no_grad():
        expected = model(images).numpy()
    np.testing.assert_allclose(test["clean"], expected, rtol=1e-4, atol=1e-4)
