"""The Lightning module: category table in checkpoints, COCO records with original ids, config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules.coco import CocoDataModule
from datamodules.writers.coco import write_tiny_coco
from lightning_modules.centernet import CenterNetDetector, decoder_settings
from metrics.detection import coco_results
from networks.detection.centernet import CenterNet
from networks.detection.decoding import Detections
from visionsuite.errors import ConfigError


def tiny_detector(num_classes: int) -> CenterNetDetector:
    net = CenterNet(num_classes, stacks=1, channels=[8, 8], blocks=[1, 1], stem_channels=4, head_channels=8,
                    pool_channels=4)
    return CenterNetDetector(net, num_classes)


def test_categories_travel_in_the_checkpoint() -> None:
    module = tiny_detector(3)
    module.categories = [{"id": 1, "name": "a"}, {"id": 3, "name": "b"}, {"id": 7, "name": "c"}]
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    restored = tiny_detector(3)
    assert [c["id"] for c in restored.category_table()] == [1, 2, 3]  # placeholder before loading
    restored.on_load_checkpoint(checkpoint)
    assert [c["id"] for c in restored.category_table()] == [1, 3, 7]


def test_coco_records_use_original_category_ids() -> None:
    detections = Detections(
        torch.tensor([[1.0, 2.0, 11.0, 22.0], [0.0, 0.0, 5.0, 5.0]]),
        torch.tensor([0.9, 0.4]),
        torch.tensor([2, 0]),
        torch.tensor([[6.0, 12.0], [2.5, 2.5]]),
    )
    records = coco_results(detections, image_id=42, category_ids=[1, 3, 7], with_keypoints=True)
    assert [r["category_id"] for r in records] == [7, 1]
    assert records[0]["bbox"] == [1.0, 2.0, 10.0, 20.0] and records[0]["image_id"] == 42
    assert records[0]["keypoints"] == {
        "top_left": [1.0, 2.0],
        "bottom_right": [11.0, 22.0],
        "center": [6.0, 12.0],
    }


def test_class_count_must_match_the_dataset(tmp_path: Path) -> None:
    root = write_tiny_coco(tmp_path / "coco", num_images=2, category_ids=(1, 3, 7))
    datamodule = CocoDataModule(
        str(root),
        train_split="train",
        val_split="val",
        test_split="val",
        input_size=64,
        batch_size=2,
        num_workers=0,
    )
    module = tiny_detector(5)
    trainer = pl.Trainer(
        accelerator="cpu",
        fast_dev_run=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    with pytest.raises(ConfigError, match="set data.num_classes=3"):
        trainer.fit(module, datamodule=datamodule)


def test_the_network_and_the_module_share_one_class_count() -> None:
    with pytest.raises(ConfigError, match=r"model\.net\.num_classes=3 but model\.num_classes=5"):
        CenterNetDetector(tiny_detector(3).net, num_classes=5)


def test_decoder_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        decoder_settings({"topk": 10})
    with pytest.raises(ConfigError, match="soft_nms"):
        decoder_settings({"soft_nms": "box"})
    assert decoder_settings({"scales": [0.6, 1, 1.2]}).scales == (0.6, 1.0, 1.2)
