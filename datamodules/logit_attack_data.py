"""Images in pixel space for the attack phase of the logit defense (arXiv:1906.10973), one shard per batch.

torchattacks bounds perturbations of images in [0, 1] (the paper's attacks too), while the suite's
DataModules normalise images. :func:`pixel_split` gives a split with the DataModule's evaluation transform
minus its ``Normalize`` (no augmentation); :func:`normalization_of` gives that ``Normalize``'s mean and std,
which :class:`~networks.defense.normalized.NormalizedClassifier` applies inside the attacked model.

:class:`AttackImagesDataModule` hands the attack module one whole shard of the logit dataset per predict batch
(``{"split", "shard", "index", "image", "label"}``), only for the shards not on disk yet (``pending``, set by
:class:`~callbacks.logit_defense.LogitDatasetRecorder`), so a resumed attack phase continues where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError, DatasetError

SPLITS = ("train", "val", "test")


def _steps(transform: Any) -> list[Any]:
    return list(transform.transforms) if isinstance(transform, T.Compose) else [transform]


def normalization_of(datamodule: Any) -> tuple[list[float], list[float]]:
    """Mean and std of the ``Normalize`` in ``datamodule.eval_transform()``; empty lists when it has none."""
    for step in _steps(datamodule.eval_transform()):
        if isinstance(step, T.Normalize):
            return [float(value) for value in step.mean], [float(value) for value in step.std]
    return [], []


def pixel_transform(datamodule: Any) -> T.Compose:
    """``datamodule.eval_transform()`` without its ``Normalize``: images as tensors in [0, 1]."""
    return T.Compose([step for step in _steps(datamodule.eval_transform()) if not isinstance(step, T.Normalize)])


def pixel_split(datamodule: Any, split: str) -> Dataset:
    """Split ``split`` (train / val / test) of an image DataModule in pixel space, without augmentation."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    datamodule.check_data()
    builder = {"train": datamodule.build_train_dataset, "val": datamodule.build_val_dataset,
               "test": datamodule.build_test_dataset}[split]
    dataset = builder(pixel_transform(datamodule))
    if dataset is None:
        raise DatasetError(f"{type(datamodule).__name__} has no fixed {split!r} split; attack train and test only "
                           "(the defender holds out its validation logits from train).")
    return dataset


def split_stride(size: int, max_samples: int | None) -> int:
    """Stride that spreads at most ``max_samples`` samples evenly over a split of ``size`` (1: all)."""
    if max_samples is None or max_samples >= size:
        return 1
    if max_samples < 1:
        raise ConfigError(f"data.max_samples_per_split must be >= 1, got {max_samples}.")
    return math.ceil(size / max_samples)


class ShardImages(Dataset):
    """Item ``k`` is the whole ``k``-th pending shard: its images stacked, labels and image indices."""

    def __init__(self, splits: dict[str, Dataset], shards: Sequence[tuple[str, int, Sequence[int]]]) -> None:
        self.splits = splits
        self.shards = list(shards)

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, position: int) -> dict[str, Any]:
        split, shard, indices = self.shards[position]
        items = [self.splits[split][index] for index in indices]
        return {"split": split, "shard": shard, "index": torch.as_tensor(list(indices), dtype=torch.int64),
                "image": torch.stack([image for image, _ in items]),
                "label": torch.as_tensor([int(label) for _, label in items], dtype=torch.int64)}


class AttackImagesDataModule(SuiteDataModule):
    """The images the attack phase attacks, in pixel space, one pending shard per batch.

    Args:
        images: The image DataModule of the classifier (digits, CIFAR, ImageNet...).
        splits: Which of its splits to attack (``train`` trains the defender, ``test`` evaluates it).
        shard_size: Images per shard (= per attack batch).
        max_samples_per_split: At most this many images per split, evenly spread (ImageNet's 1.28M training
            images are more than a defender needs); None attacks all.
        num_workers: DataLoader worker processes.
    """

    def __init__(self, images: SuiteDataModule, splits: Sequence[str] = ("train", "test"),
                 shard_size: int = 256, max_samples_per_split: int | None = None, num_workers: int = 0) -> None:
        super().__init__()
        unknown = [split for split in splits if split not in SPLITS]
        if unknown or not splits:
            raise ConfigError(f"data.splits={list(splits)}: use a non-empty list of {', '.join(SPLITS)}.")
        if "train" not in splits or "test" not in splits:
            raise ConfigError(f"data.splits={list(splits)} must include train (defender training) and test "
                              "(evaluation).")
        if shard_size < 1:
            raise ConfigError(f"data.shard_size must be >= 1, got {shard_size}.")
        self.images = images
        self.splits = list(splits)
        self.shard_size = int(shard_size)
        self.max_samples_per_split = max_samples_per_split
        self.num_workers = int(num_workers)
        self.pixel_splits: dict[str, Dataset] = {}
        #: ``(split, shard, image indices)`` still to attack; set by the recorder from the logit dataset on disk.
        self.pending: list[tuple[str, int, list[int]]] = []

    @property
    def num_classes(self) -> int | None:
        return self.images.num_classes

    def check_data(self) -> None:
        self.images.check_data()

    def setup(self, stage: str | None = None) -> None:
        for split in self.splits:
            if split not in self.pixel_splits:
                self.pixel_splits[split] = pixel_split(self.images, split)

    def split_sizes(self) -> tuple[dict[str, int], dict[str, int]]:
        """``({split: samples attacked}, {split: stride})`` after ``max_samples_per_split``."""
        self.setup()
        sizes, strides = {}, {}
        for split, dataset in self.pixel_splits.items():
            size = len(dataset)  # type: ignore[arg-type]
            strides[split] = split_stride(size, self.max_samples_per_split)
            sizes[split] = len(range(0, size, strides[split]))
        return sizes, strides

    def normalization(self) -> tuple[list[float], list[float]]:
        return normalization_of(self.images)

    def predict_dataloader(self) -> DataLoader:
        # batch_size=None: each item is already a whole shard.
        return DataLoader(ShardImages(self.pixel_splits, self.pending), batch_size=None, shuffle=False,
                          num_workers=self.num_workers)


__all__ = ["AttackImagesDataModule", "ShardImages", "normalization_of", "pixel_split", "pixel_transform",
           "split_stride"]
