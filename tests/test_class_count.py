"""A dataset's class count has one source, ``data.num_classes``: every model of the run follows it unless the user
sets ``model.num_classes``, and the DataModule checks it against the files (a fixed label set, ImageNet's class
folders, COCO's categories, an SBIR split's seen classes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.writers import write_image_folder
from datamodules.writers.coco import write_tiny_coco
from tests.experiment_snapshot import composed
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.pipeline import run_job


@pytest.mark.parametrize("experiment", ["classify_cifar10", "classify_cifar100", "nas_train_imagenet",
                                        "pdarts_stage_cifar100", "pcdarts_imagenet", "pfs_imagenet_learn",
                                        "centernet104_coco", "centernet_shapes", "sake_tuberlin",
                                        "sake_sketchy_split2", "sake_demo"])
def test_the_model_follows_the_datasets_class_count(experiment: str) -> None:
    cfg = composed(experiment)
    assert cfg.model.num_classes == cfg.data.num_classes


def test_one_override_sets_the_class_count_of_data_and_network(make_config) -> None:
    cfg = make_config("experiment=nas_train_imagenet", "data.num_classes=4")
    assert (cfg.data.num_classes, cfg.model.num_classes, cfg.model.net.num_classes) == (4, 4, 4)
    cfg = make_config("experiment=nas_train_imagenet", "data.num_classes=4", "model.num_classes=7")
    assert (cfg.model.num_classes, cfg.model.net.num_classes) == (7, 7)  # the user's own value wins


def test_a_fixed_label_set_refuses_another_count(make_config) -> None:
    with pytest.raises(ConfigError, match=r"data.num_classes=4, but CIFAR-10 has 10 classes; its label set is fixed"):
        build(make_config("experiment=classify_cifar10", "data.num_classes=4").data, "data")


def test_coco_categories_are_checked_against_the_config(make_config, tmp_path: Path) -> None:
    root = write_tiny_coco(tmp_path / "data" / "coco", splits=("train2017", "val2017"), category_ids=(1, 3, 7))
    data = build(make_config("experiment=centernet52_coco").data, "data")
    with pytest.raises(ConfigError, match=rf"data.num_classes=80, but {root}.*instances_train2017.json \(its "
                                          r"categories\) has 3 classes; set data.num_classes=3"):
        data.load_categories()
    data = build(make_config("experiment=centernet52_coco", "data.num_classes=3").data, "data")
    assert data.num_classes == 3 and len(data.load_categories()) == 3


def test_a_four_class_imagenet_runs_with_one_override(make_config, tmp_path: Path) -> None:
    """The paper's ImageNet network trained on a 4-class ImageFolder: ``data.num_classes=4`` is the only change."""
    write_image_folder(tmp_path / "data" / "imagenet", num_classes=4, images_per_class=2, image_size=72)
    result = run_job(make_config("experiment=nas_train_imagenet", "data.num_classes=4", "debug=fast",
                                 "data.image_size=64", "+data.resize_size=72", "data.batch_size=2",
                                 "model.net.init_channels=4", "model.net.layers=3", "model.input_size=64",
                                 "model.auxiliary_weight=0"))
    assert "test/acc1" in result["metrics"]
