"""The classifier module: soft targets, checkpoints that rebuild themselves, and the mismatched-checkpoint errors."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
import torch

from lightning_modules.classification import ImageClassifier
from networks.classification import build_backbone
from tests.classification.helpers import TINY_DIGITS
from visionsuite.errors import ConfigError
from visionsuite.pipeline import run_job

TINY_RESNET20 = {"name": "resnet20", "options": {"width_multiplier": 0.25}}


def tiny_resnet20(num_classes: int = 10) -> torch.nn.Module:
    return build_backbone("resnet20", num_classes, width_multiplier=0.25)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny classify_digits run (quarter-width ResNet-20) shared by the checkpoint tests."""
    from tests.helpers import compose_config

    run_dir = tmp_path_factory.mktemp("classify_digits")
    result = run_job(compose_config(list(TINY_DIGITS), run_dir / "run"))
    assert 0.0 <= result["metrics"]["test/acc1"] <= 1.0
    return Path(result["artifacts"]["last_checkpoint"])


def test_soft_targets_flow_through_the_loss_and_the_train_accuracy() -> None:
    module = ImageClassifier(tiny_resnet20(), num_classes=10)
    images = torch.randn(4, 3, 32, 32)
    soft = torch.zeros(4, 10)
    soft[torch.arange(4), torch.tensor([1, 2, 3, 4])] = 0.7
    soft[torch.arange(4), torch.tensor([5, 6, 7, 8])] = 0.3
    outputs = module.training_step((images, soft), 0)
    expected = torch.nn.functional.cross_entropy(module.net(images), soft)
    assert torch.allclose(outputs["loss"], expected, atol=1e-5)
    dominant = torch.tensor([1, 2, 3, 4])  # the accuracy counts the dominant label of each soft target
    with torch.no_grad():
        expected_accuracy = (module.net(images).argmax(dim=1) == dominant).float().mean()
    assert torch.allclose(module.train_metrics["acc1"].compute(), expected_accuracy)


def test_paired_views_log_the_clean_and_augmented_losses_in_eval_mode() -> None:
    module = ImageClassifier(tiny_resnet20(), num_classes=10)
    clean, augmented = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    targets = torch.tensor([0, 1, 2, 3])
    running_mean = module.net.bn1.running_mean.clone()
    outputs = module._distribution_gap(clean, targets, augmented)
    assert module.net.training
    module.net.eval()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(module.net(augmented), targets)
    assert torch.allclose(outputs["loss_augmented"], expected, atol=1e-5)
    assert torch.allclose(outputs["loss_gap"], outputs["loss_augmented"] - outputs["loss_clean"])
    assert torch.equal(module.net.bn1.running_mean, running_mean)  # the heavy view does not touch BN statistics


def test_a_checkpoint_rebuilds_itself_and_initialises_another_run(trained_checkpoint: Path) -> None:
    loaded = ImageClassifier.load_from_checkpoint(trained_checkpoint)
    assert loaded.hparams.backbone == TINY_RESNET20 and loaded.hparams.num_classes == 10
    refined = ImageClassifier(tiny_resnet20(), num_classes=10, init_from=str(trained_checkpoint),
                              optimizer=partial(torch.optim.SGD, lr=0.1))
    for name, value in loaded.net.state_dict().items():
        assert torch.equal(refined.net.state_dict()[name], value)
    adopted = ImageClassifier(ImageClassifier.network_of_checkpoint(trained_checkpoint, 10), num_classes=10,
                              init_from=str(trained_checkpoint))  # model/backbone=from_checkpoint
    assert adopted.hparams.backbone == TINY_RESNET20


def test_a_checkpoint_of_another_backbone_names_both(make_config, trained_checkpoint: Path) -> None:
    cfg = make_config(*TINY_DIGITS, "model/backbone=resnet56", "mode=test", f"ckpt_path={trained_checkpoint}")
    with pytest.raises(ConfigError, match="holds backbone resnet20 with 10 classes.*builds backbone resnet56"):
        run_job(cfg)


def test_a_checkpoint_with_another_class_count_names_both(trained_checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="resnet20 with 10 classes.*resnet20 with 100 classes"):
        ImageClassifier(tiny_resnet20(100), num_classes=100, init_from=str(trained_checkpoint))


def test_refining_without_a_checkpoint_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="experiment=augrefine_refine ckpt_path="):
        ImageClassifier(tiny_resnet20(), num_classes=10, require_init_from=True)


def test_classify_cifar10_trains_on_cifar_pickles_with_cutmix(make_config, tmp_path: Path) -> None:
    from datamodules.writers.cifar import write_cifar10
    from tests.classification.helpers import TINY_BACKBONE, TINY_LOOPS

    write_cifar10(tmp_path / "data", num_train=32, num_test=16)
    cfg = make_config("experiment=classify_cifar10", *TINY_BACKBONE, *TINY_LOOPS, "data.num_workers=0",
                      "data.pin_memory=false", "data.augment=heavy_cutmix")
    result = run_job(cfg)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["metrics"]["test/acc1"] == pytest.approx(result["metrics"]["test/acc1"])
    assert "train/acc1" in saved["metrics"] and "val/acc1" in saved["metrics"]
