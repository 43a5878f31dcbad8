"""Bad input stops with one clear error that names the path or key, and leaves nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.writers import truncate_file, write_cifar10
from tests.helpers import run_cli
from tests.test_train_pipeline import TINY
from visionsuite.errors import ConfigError, DatasetError
from visionsuite.pipeline import run_job

CIFAR_TINY = ["experiment=nas_train_cifar10", "model.net.init_channels=4", "model.net.layers=3", "data.batch_size=8",
              "data.num_workers=0", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
              "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]


def test_missing_data_folder_names_it_and_how_to_get_the_data(make_config, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        run_job(make_config(*CIFAR_TINY))
    message = str(error.value)
    assert str(tmp_path / "data") in message and "cifar-10-batches-py" in message
    assert "data.download=true" in message
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_corrupt_cifar_batch_names_the_file(make_config, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", num_train=50, num_test=10)
    truncate_file(tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3", keep_bytes=100)
    with pytest.raises(DatasetError, match="data_batch_3"):
        run_job(make_config(*CIFAR_TINY))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cifar_in_the_real_layout_trains(make_config, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", num_train=50, num_test=10)
    result = run_job(make_config(*CIFAR_TINY))
    assert "test/acc1" in result["metrics"]


def test_unknown_genotype_lists_the_known_names(make_config) -> None:
    with pytest.raises(ConfigError) as error:
        run_job(make_config(*TINY, "model.net.genotype=NOT_A_CELL"))
    for name in ("DARTS_V2", "PC_DARTS_cifar", "PC_DARTS_image", "PDARTS"):
        assert name in str(error.value)


def test_malformed_genotype_json_names_the_file(make_config, tmp_path: Path) -> None:
    broken = tmp_path / "genotype.json"
    broken.write_text('{"normal": [["sep_conv_3x3", 0]')
    with pytest.raises(ConfigError, match=str(broken)):
        run_job(make_config(*TINY, f"model.net.genotype={broken}"))


def test_invalid_mode_names_the_key(make_config) -> None:
    with pytest.raises(ConfigError, match="mode="):
        run_job(make_config(*TINY, "mode=fly"))


def test_mode_test_without_checkpoint_says_what_to_add(make_config) -> None:
    with pytest.raises(ConfigError, match="ckpt_path="):
        run_job(make_config(*TINY, "mode=test"))


def test_unknown_experiment_lists_the_available_ones(tmp_path: Path) -> None:
    completed = run_cli("experiment=nas_train_mars", cwd=tmp_path, timeout=120)
    assert completed.returncode != 0
    assert "nas_train_mars" in completed.stderr
    assert "nas_train_cifar10" in completed.stderr  # Hydra lists the options


def test_cli_prints_one_clear_line_for_user_errors(tmp_path: Path) -> None:
    completed = run_cli(*CIFAR_TINY, "logger=csv", f"paths.data_dir={tmp_path / 'nowhere'}", cwd=tmp_path,
                        timeout=300)
    assert completed.returncode == 2
    assert "error: CIFAR" in completed.stderr or "error: " in completed.stderr
    assert "Traceback" not in completed.stderr
    assert str(tmp_path / "nowhere") in completed.stderr


def test_imagenet_in_the_imagefolder_layout_trains(make_config, tmp_path: Path) -> None:
    from datamodules.writers import write_image_folder

    write_image_folder(tmp_path / "data" / "imagenet", num_classes=3, images_per_class=4, image_size=80)
    result = run_job(make_config(
        "experiment=nas_train_imagenet", "data.num_classes=3", "data.image_size=64",  # the model follows data
        "+data.resize_size=72", "data.batch_size=4", "data.num_workers=0", "model.net.init_channels=4",
        "model.net.layers=3", "model.auxiliary_weight=0", "model.input_size=64", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"))
    assert "test/acc1" in result["metrics"]


def test_imagenet_class_count_mismatch_names_the_key(make_config, tmp_path: Path) -> None:
    from datamodules.writers import write_image_folder

    write_image_folder(tmp_path / "data" / "imagenet", num_classes=3, images_per_class=1, image_size=32)
    with pytest.raises(ConfigError, match=r"data.num_classes=1000, but .*imagenet \(class folders of train/ and val/\) has 3 classes; set data.num_classes=3"):
        run_job(make_config("experiment=nas_train_imagenet", "data.num_workers=0"))


def test_a_setting_lightning_refuses_becomes_a_config_error(make_config) -> None:
    # Trainer-level gradient clipping cannot be combined with the search's manual optimization.
    with pytest.raises(ConfigError, match="Lightning refused"):
        run_job(make_config("experiment=darts_digits", "model.net.init_channels=4", "model.net.layers=3",
                            "trainer.gradient_clip_val=5.0", "trainer.max_epochs=1", "trainer.limit_train_batches=1"))
