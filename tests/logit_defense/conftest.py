"""Fixtures of the logit-defense tests: a small trained digits classifier and its checkpoint (made once)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from datamodules.digits import DigitsDataModule
from lightning_modules.classification import ImageClassifier
from networks.classification import build_backbone

#: Test scale: 16x16 digits and a quarter-width ResNet-20 (2 epochs, ~90 % test accuracy in seconds).
IMAGE_SIZE = 16


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-20 (width 0.25) trained for 3 epochs on 16x16 digits, saved as a suite classifier checkpoint."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    pl.seed_everything(0, workers=True)
    root = tmp_path_factory.mktemp("classifier")
    model = ImageClassifier(build_backbone("resnet20", 10, width_multiplier=0.25), num_classes=10, input_size=IMAGE_SIZE,
                            optimizer=lambda params: torch.optim.Adam(params, lr=3e-3))
    data = DigitsDataModule(image_size=IMAGE_SIZE, batch_size=64, crop_padding=0, seed=0)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
                         limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    path = root / "classifier.ckpt"
    trainer.save_checkpoint(path)
    torch.set_num_threads(previous)
    return path


@pytest.fixture
def quiet_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "disabled")
    yield
    torch.set_num_threads(previous)
