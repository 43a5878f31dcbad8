"""Pixel space: the attack phase takes each split without Normalize, and the attacked model normalises."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.cifar import CIFARDataModule
from datamodules.logit_attack_data import AttackImagesDataModule, normalization_of, pixel_split, split_stride
from datamodules.transforms import CIFAR10_MEAN, CIFAR10_STD
from datamodules.writers import write_cifar10
from networks.defense.normalized import NormalizedClassifier
from visionsuite.errors import ConfigError, DatasetError


def test_cifar_splits_in_pixel_space(tmp_path: Path) -> None:
    write_cifar10(tmp_path, num_train=20, num_test=10)
    data = CIFARDataModule(name="cifar10", data_dir=tmp_path)
    mean, std = normalization_of(data)
    assert mean == pytest.approx(CIFAR10_MEAN) and std == pytest.approx(CIFAR10_STD)
    images = torch.stack([pixel_split(data, "train")[index][0] for index in range(20)])
    assert images.shape == (20, 3, 32, 32) and 0.0 <= images.min() and images.max() <= 1.0
    normalised = data.build_test_dataset(data.eval_transform())[0][0].unsqueeze(0)
    pixel = pixel_split(data, "test")[0][0].unsqueeze(0)
    wrapped = NormalizedClassifier(torch.nn.Identity(), mean, std)
    torch.testing.assert_close(wrapped(pixel), normalised)  # the wrapper applies exactly the datamodule's Normalize
    with pytest.raises(DatasetError, match="no fixed 'val' split"):
        pixel_split(data, "val")


def test_attack_data_validates_its_options(tmp_path: Path) -> None:
    write_cifar10(tmp_path, num_train=20, num_test=10)
    images = CIFARDataModule(name="cifar10", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="must include train"):
        AttackImagesDataModule(images, splits=["test"])
    with pytest.raises(ConfigError, match="shard_size must be >= 1"):
        AttackImagesDataModule(images, shard_size=0)
    data = AttackImagesDataModule(images, shard_size=8, max_samples_per_split=6)
    assert data.split_sizes() == ({"train": 5, "test": 5}, {"train": 4, "test": 2})
    assert split_stride(1281167, 10000) == 129
