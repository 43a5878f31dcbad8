"""ImageNet (ILSVRC-2012) in the ImageFolder layout, with the DARTS-family mobile-setting transforms.

Expected layout::

    <data_dir>/train/<wnid>/*.JPEG     (1.28M images in 1000 class folders)
    <data_dir>/val/<wnid>/*.JPEG       (50,000 images, sorted into the same class folders)

The labels of the ImageNet test set are not public, so, as every paper of the field, the validation set
``val/`` is both the validation split and the test split (the reported "test" accuracy is the ``val/``
accuracy). ``val_fraction > 0`` instead holds out a seeded random part of ``train/`` for validation, and
``val_per_class = n`` the last ``n`` images (in file-name order) of every class folder of ``train/``: the split of
Pruning from Scratch's official ImageNet gate learning (``datasets.py``: 50 per class).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from datamodules.augment import AugmentContext
from datamodules.classification import ClassificationDataModule, Transform
from datamodules.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_eval_transform,
    imagenet_train_transform,
)
from visionsuite.datamodule import check_declared_num_classes
from visionsuite.errors import ConfigError, DatasetError

_LAYOUT = "<data_dir>/train/<class>/*.JPEG and <data_dir>/val/<class>/*.JPEG (the same class folders in both)"


def strict_image_loader(path: str) -> Image.Image:
    """Open ``path`` as an RGB PIL image, raising DatasetError naming the file if it cannot be decoded."""
    try:
        with open(path, "rb") as handle:
            image = Image.open(handle)
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DatasetError(
            f"Cannot decode the image {path} ({type(error).__name__}: {error}). Replace or delete this file; "
            "corrupt images are not skipped silently."
        ) from error


class StrictImageFolder(ImageFolder):
    """ImageFolder whose loader raises DatasetError on undecodable images and on unusable folders.

    Args:
        root: The split folder holding one sub-folder per class.
        transform: Applied to the RGB PIL image.
    """

    def __init__(self, root: str | Path, transform: Transform | None = None) -> None:
        try:
            super().__init__(str(root), transform=transform, loader=strict_image_loader)
        except (FileNotFoundError, NotADirectoryError) as error:
            raise DatasetError(
                f"Unusable image folder {root}: {error}. Expected the layout {_LAYOUT}."
            ) from error


def class_folders(split_dir: Path) -> list[str]:
    """Sorted names of the sub-folders of ``split_dir`` (the classes, as ImageFolder finds them)."""
    with os.scandir(split_dir) as entries:
        return sorted(entry.name for entry in entries if entry.is_dir())


class ImageNetDataModule(ClassificationDataModule):
    """ImageNet classification in the DARTS-family mobile setting (224x224 crops, colour jitter).

    ``val/`` serves as both validation and test split (ImageNet test labels are not public).

    Args:
        data_dir: Directory holding ``train/`` and ``val/`` in the ImageFolder layout.
        num_classes: Expected number of class folders (1000 for ILSVRC-2012); checked in ``setup``.
        image_size: Side of the training crops and of the evaluation centre crop.
        resize_size: Short side after the evaluation resize (before the centre crop).
        batch_size, eval_batch_size, num_workers, pin_memory, seed, val_fraction, search_split,
        search_split_fraction, drop_last: see :class:`ClassificationDataModule`.
        search_subset_fractions: ``[weights, architecture]`` fractions of every class of the training set for
            the search split, e.g. ``[0.1, 0.025]`` (PC-DARTS ImageNet search, arXiv:1907.05737 Sec. 4.3):
            class-balanced, disjoint subsets drawn with ``seed``. None: ``search_split_fraction`` (DARTS).
        val_per_class: hold out the last ``val_per_class`` images (file-name order) of every class of ``train/``
            for validation (Pruning from Scratch: 50); 0 (default) leaves validation to ``val_fraction``.
    """

    in_channels = 3

    def __init__(
        self,
        data_dir: str | Path,
        num_classes: int = 1000,
        image_size: int = 224,
        resize_size: int = 256,
        search_subset_fractions: list[float] | None = None,
        val_per_class: int = 0,
        **loader_options: Any,
    ) -> None:
        super().__init__(**loader_options)  # batch sizes, workers, seed, splits: see ClassificationDataModule
        if isinstance(val_per_class, bool) or not isinstance(val_per_class, int) or val_per_class < 0:
            raise ConfigError(f"data.val_per_class must be an integer >= 0 (images held out of each class), "
                              f"got {val_per_class!r}.")
        if val_per_class and (self.val_fraction > 0 or self.search_split):
            raise ConfigError(f"data.val_per_class={val_per_class} holds out its own validation images: set "
                              "data.val_fraction=0 and data.search_split=false with it.")
        self.val_per_class = val_per_class
        sizes = {"num_classes": num_classes, "image_size": image_size, "resize_size": resize_size}
        for key, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"data.{key} must be a positive integer, got {value!r}.")
        if resize_size < image_size:
            raise ConfigError(
                f"data.resize_size ({resize_size}) must be >= data.image_size ({image_size}) for the centre crop."
            )
        if search_subset_fractions is not None:
            fractions = list(search_subset_fractions)
            if (len(fractions) != 2 or any(isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0 for f in fractions)
                    or sum(fractions) > 1):
                raise ConfigError(
                    "data.search_subset_fractions must be two positive fractions [weights, architecture] of each "
                    f"class with a sum <= 1 (PC-DARTS: [0.1, 0.025]), got {search_subset_fractions!r}."
                )
            search_subset_fractions = [float(f) for f in fractions]
        self.search_subset_fractions = search_subset_fractions
        self.save_hyperparameters(logger=False)
        self.data_dir = Path(data_dir).expanduser()
        self.num_classes = num_classes
        self.image_size = image_size
        self.resize_size = resize_size

    def check_data(self) -> None:
        """Check train/ and val/ exist, hold the same class folders, and as many as ``num_classes``."""
        classes: dict[str, list[str]] = {}
        for split in ("train", "val"):
            split_dir = self.data_dir / split
            if not split_dir.is_dir():
                raise DatasetError(
                    f"ImageNet folder {split_dir} not found (data.data_dir={self.data_dir}). Expected the "
                    f"ImageFolder layout {_LAYOUT}; the ILSVRC-2012 validation images must be sorted into "
                    "class folders too."
                )
            classes[split] = class_folders(split_dir)
            if not classes[split]:
                raise DatasetError(f"{split_dir} has no class folders; expected the layout {_LAYOUT}.")
        if classes["train"] != classes["val"]:
            only_train = sorted(set(classes["train"]) - set(classes["val"]))
            only_val = sorted(set(classes["val"]) - set(classes["train"]))
            raise DatasetError(
                f"The class folders of {self.data_dir / 'train'} and {self.data_dir / 'val'} differ: only in "
                f"train/: {only_train[:5]}{' ...' if len(only_train) > 5 else ''} ({len(only_train)}), "
                f"only in val/: {only_val[:5]}{' ...' if len(only_val) > 5 else ''} ({len(only_val)})."
            )
        check_declared_num_classes(self.num_classes, len(classes["train"]), f"{self.data_dir} (class folders of "
                                   "train/ and val/)", fix=f"set data.num_classes={len(classes['train'])} (the model "
                                   "follows it) or fix the folders.")

    def search_split_indices(self, raw_train: Dataset, num_train: int) -> tuple[list[int], list[int]]:
        """Class-balanced subsets when ``search_subset_fractions`` is set: from every class, a seeded random
        ``weights`` fraction of its images for the weights and a disjoint ``architecture`` fraction for alpha
        (at least one image each)."""
        if self.search_subset_fractions is None:
            return super().search_split_indices(raw_train, num_train)
        weights_fraction, arch_fraction = self.search_subset_fractions
        by_class: dict[int, list[int]] = {}
        for index, target in enumerate(raw_train.targets):  # type: ignore[attr-defined]
            by_class.setdefault(int(target), []).append(index)
        generator = torch.Generator().manual_seed(self.seed)
        weights_indices, arch_indices = [], []
        for target in sorted(by_class):
            members = by_class[target]
            if len(members) < 2:
                raise DatasetError(f"class {target} of {self.data_dir / 'train'} has {len(members)} image(s); the "
                                   "class-balanced search subsets need at least 2 per class.")
            order = [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
            num_weights = max(1, round(weights_fraction * len(members)))
            num_arch = max(1, min(len(members) - num_weights, round(arch_fraction * len(members))))
            weights_indices += order[:num_weights]
            arch_indices += order[num_weights:num_weights + num_arch]
        return sorted(weights_indices), sorted(arch_indices)

    @property
    def holds_out_validation(self) -> bool:
        return self.val_per_class > 0 or super().holds_out_validation

    def hold_out_indices(self, raw_train: Dataset, num_train: int) -> tuple[list[int], list[int]]:
        """With ``val_per_class``: the last ``val_per_class`` images of every class (ImageFolder lists each
        class's files in name order) are held out; else the seeded random ``val_fraction``."""
        if not self.val_per_class:
            return super().hold_out_indices(raw_train, num_train)
        by_class: dict[int, list[int]] = {}
        for index, target in enumerate(raw_train.targets):  # type: ignore[attr-defined]
            by_class.setdefault(int(target), []).append(index)
        classes = raw_train.classes  # type: ignore[attr-defined]
        train_indices, val_indices = [], []
        for target in sorted(by_class):
            members = by_class[target]
            if len(members) <= self.val_per_class:
                raise DatasetError(f"{self.data_dir / 'train' / classes[target]} has {len(members)} image(s): "
                                   f"data.val_per_class={self.val_per_class} would leave none to train on; "
                                   "lower data.val_per_class.")
            train_indices += members[:-self.val_per_class]
            val_indices += members[-self.val_per_class:]
        return sorted(train_indices), sorted(val_indices)

    def build_train_dataset(self, transform: Transform | None) -> Dataset:
        return StrictImageFolder(self.data_dir / "train", transform=transform)

    def build_test_dataset(self, transform: Transform | None) -> Dataset:
        return StrictImageFolder(self.data_dir / "val", transform=transform)

    def train_transform(self) -> Transform:
        return imagenet_train_transform(self.image_size)

    def eval_transform(self) -> Transform:
        return imagenet_eval_transform(self.image_size, self.resize_size)

    def augment_context(self) -> AugmentContext:
        """PIL images, RandomResizedCrop as the crop, AutoAugment's ImageNet policy (``data.augment``)."""
        return AugmentContext(self.image_size, IMAGENET_MEAN, IMAGENET_STD, input_kind="pil", crop="resized",
                              autoaugment_policy="imagenet", resize_size=self.resize_size)
