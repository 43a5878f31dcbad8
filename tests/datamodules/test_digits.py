"""DigitsDataModule: scikit-learn's embedded digits as a fixed-split 3x32x32 dataset."""

from __future__ import annotations

import pytest
import torch

from datamodules import DigitsDataModule
from datamodules.digits import digits_split_indices, load_digit_tensors
from datamodules.transforms import Cutout
from visionsuite.errors import ConfigError

SIZES = {"train": 1257, "val": 269, "test": 271}


def test_attributes_need_no_data():
    module = DigitsDataModule()
    assert (module.num_classes, module.in_channels, module.image_size) == (10, 3, 32)


def test_fixed_split_sizes_and_disjointness():
    module = DigitsDataModule(seed=123, val_fraction=0.3)  # neither changes the fixed splits
    module.setup()
    sizes = {
        "train": len(module.train_dataset),
        "val": len(module.val_dataset),
        "test": len(module.test_dataset),
    }
    assert sizes == SIZES
    splits = digits_split_indices(1797)
    assert sum(len(indices) for indices in splits.values()) == 1797
    assert len(set().union(*(set(indices.tolist()) for indices in splits.values()))) == 1797


def test_images_and_labels():
    images, labels = load_digit_tensors(32)
    assert images.shape == (1797, 3, 32, 32) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert torch.equal(images[:, 0], images[:, 2])
    assert labels.dtype == torch.int64 and set(labels.tolist()) == set(range(10))
    module = DigitsDataModule(batch_size=32)
    batch, targets = next(iter(module.train_dataloader()))
    assert batch.shape == (32, 3, 32, 32) and targets.dtype == torch.int64
    assert abs(float(torch.cat([x for x, _ in module.val_dataloader()]).mean())) < 0.2


def test_deterministic_across_instances():
    first, second = DigitsDataModule(seed=1), DigitsDataModule(seed=2)
    for a, b in zip(first.test_dataloader(), second.test_dataloader(), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert first.mean_std == second.mean_std
    order = [next(iter(DigitsDataModule(seed=1).train_dataloader()))[1] for _ in range(2)]
    assert torch.equal(order[0], order[1])


def test_augmentation_options():
    module = DigitsDataModule(crop_padding=0, cutout_length=8, image_size=16)
    steps = module.train_transform().transforms
    assert [type(step).__name__ for step in steps] == ["Normalize", "Cutout"]
    assert isinstance(steps[-1], Cutout)
    assert next(iter(module.test_dataloader()))[0].shape[1:] == (3, 16, 16)
    assert not any("Flip" in type(step).__name__ for step in DigitsDataModule().train_transform().transforms)


def test_search_split_on_the_train_split():
    module = DigitsDataModule(search_split=True, batch_size=64)
    loaders = module.train_dataloader()
    assert (len(loaders["weights"].dataset), len(loaders["arch"].dataset)) == (628, 629)
    assert module.val_dataloader().dataset.indices == loaders["arch"].dataset.indices
    assert len(module.test_dataloader().dataset) == SIZES["test"]


def test_invalid_image_size():
    with pytest.raises(ConfigError, match="data.image_size"):
        DigitsDataModule(image_size=4)
