"""The COCO DataModule: layout, augmentation, batching, category mapping and every bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.coco import CocoDataModule
from datamodules.detection_transforms import TrainAugmentation, crop_border
from datamodules.writers.coco import write_tiny_coco
from datamodules.writers.corruption import write_garbage
from visionsuite.errors import DatasetError


def make_datamodule(root: Path, **kwargs) -> CocoDataModule:
    settings = {
        "train_split": "train",
        "val_split": "val",
        "test_split": "val",
        "input_size": 64,
        "batch_size": 2,
        "eval_batch_size": 2,
        "num_workers": 0,
        "size_divisor": 32,
    }
    return CocoDataModule(str(root), **{**settings, **kwargs})


@pytest.fixture
def tiny_coco(tmp_path: Path) -> Path:
    return write_tiny_coco(tmp_path / "coco", num_images=4, category_ids=(1, 3, 7))


def test_standard_layout_batches_and_targets(tiny_coco: Path) -> None:
    datamodule = make_datamodule(tiny_coco)
    datamodule.setup("fit")
    assert datamodule.num_classes == 3
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["images"].shape == (2, 3, 64, 64)
    targets = batch["targets"]
    assert targets["tl_heatmap"].shape == (2, 3, 16, 16)
    assert targets["mask"].sum() == sum(len(b) for b in batch["boxes"])
    val = next(iter(datamodule.val_dataloader()))
    assert val["images"].shape == (2, 3, 64, 96)  # 64x80 images padded to a multiple of 32
    assert val["original_sizes"].tolist() == [[64.0, 80.0], [64.0, 80.0]]
    assert val["image_ids"].tolist() == [1, 2]


def test_non_contiguous_category_ids_are_mapped_in_id_order(tiny_coco: Path) -> None:
    datamodule = make_datamodule(tiny_coco)
    datamodule.setup("fit")
    assert [c["id"] for c in datamodule.categories] == [1, 3, 7]
    dataset = datamodule._dataset("train")
    data = json.loads((tiny_coco / "annotations" / "instances_train.json").read_text())
    first = [a for a in data["annotations"] if a["image_id"] == dataset.image_ids[0]]
    assert dataset.labels[0].tolist() == [{1: 0, 3: 1, 7: 2}[a["category_id"]] for a in first]


def test_augmentation_keeps_boxes_on_their_objects() -> None:
    torch.manual_seed(0)
    image = np.zeros((100, 120, 3), dtype=np.uint8)
    image[20:60, 30:90] = 255  # one white box (30, 20)-(90, 60)
    augment = TrainAugmentation(
        input_size=64,
        random_scales=[0.8, 1.0, 1.2],
        border=16,
        color_jitter=0,
        lighting_std=0,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    for _ in range(20):
        tensor, boxes, labels = augment(
            Image.fromarray(image), np.array([[30.0, 20.0, 90.0, 60.0]], np.float32), np.array([0])
        )
        assert tensor.shape == (3, 64, 64)
        for x1, y1, x2, y2 in boxes:
            inside = tensor[0, int(y1) + 1 : int(y2) - 1, int(x1) + 1 : int(x2) - 1]
            assert inside.numel() == 0 or inside.mean() > 0.9
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64


def test_crop_border_is_halved_for_small_images() -> None:
    assert crop_border(128, 640) == 128
    assert crop_border(128, 128) == 32


def test_annotation_file_that_does_not_parse(tiny_coco: Path) -> None:
    path = tiny_coco / "annotations" / "instances_train.json"
    path.write_text(path.read_text()[:50])
    with pytest.raises(DatasetError, match=r"instances_train\.json is not valid JSON"):
        make_datamodule(tiny_coco).setup("fit")


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_annotation_file_without_a_required_list(tiny_coco: Path, key: str) -> None:
    path = tiny_coco / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"instances_train\.json lacks the list\(s\) '{key}'"):
        make_datamodule(tiny_coco).setup("fit")


def test_missing_annotation_file_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"annotations/instances_train\.json.*COCO layout"):
        make_datamodule(tmp_path).setup("fit")


def test_missing_image_file_is_named(tiny_coco: Path) -> None:
    (tiny_coco / "val" / "000000000003.png").unlink()
    with pytest.raises(
        DatasetError,
        match=r"1 image file\(s\) listed in .*instances_val\.json are missing.*000000000003\.png",
    ):
        make_datamodule(tiny_coco).setup("fit")


def test_image_that_fails_to_decode_is_named(tiny_coco: Path) -> None:
    write_garbage(tiny_coco / "val" / "000000000002.png")
    datamodule = make_datamodule(tiny_coco)
    datamodule.setup("fit")
    with pytest.raises(DatasetError, match=r"Cannot decode image .*000000000002\.png"):
        list(datamodule.val_dataloader())


def test_degenerate_boxes_are_skipped_with_one_warning(
    tiny_coco: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tiny_coco / "annotations" / "instances_train.json"
    data = json.loads(path.read_text())
    before = len(data["annotations"])
    data["annotations"][0]["bbox"][2] = 0.0
    data["annotations"][1]["bbox"][3] = -4.0
    data["annotations"][2]["bbox"][2] = -1.0
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="datamodules.coco"):
        datamodule = make_datamodule(tiny_coco)
        datamodule.setup("fit")
    dataset = datamodule._dataset("train")
    assert sum(len(b) for b in dataset.boxes) == before - 3
    warnings = [r for r in caplog.records if "zero or negative" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 3 annotation(s)" in warnings[0].getMessage()
    next(iter(datamodule.train_dataloader()))  # batches still build


def test_predict_dir_must_hold_images(tiny_coco: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="holds no image"):
        make_datamodule(tiny_coco, predict_dir=str(empty)).predict_dataloader()
    loader = make_datamodule(tiny_coco, predict_dir=str(tiny_coco / "val")).predict_dataloader()
    batch = next(iter(loader))
    assert batch["file_names"] == ["000000000001.png", "000000000002.png"]
    assert batch["image_ids"].tolist() == [1, 2]  # COCO-style numeric names give the ids
    named = tmp_path / "named"
    named.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.new("RGB", (20, 10)).save(named / name)
    batch = next(iter(make_datamodule(tiny_coco, predict_dir=str(named)).predict_dataloader()))
    assert batch["file_names"] == ["a.jpg", "b.png"] and batch["image_ids"].tolist() == [1, 2]
