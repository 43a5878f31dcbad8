"""The embedded dataset of the default job: scikit-learn's handwritten digits, upscaled to 3x32x32.

``sklearn.datasets.load_digits`` ships inside scikit-learn (1797 grey 8x8 images of the digits 0-9, values
0..16), so the default job needs no download. The images are scaled to [0, 1], upscaled bilinearly to
``image_size``, replicated to 3 channels (so CIFAR networks run unchanged) and normalised with the mean and
standard deviation of the training split.

The splits are fixed, independent of the run seed, so results are comparable across runs: a permutation of
the 1797 images by ``numpy.random.RandomState(0)`` (NumPy's frozen legacy generator), cut into 70 % train
(1257), 15 % validation (269) and the rest test (271).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from datamodules.augment import AugmentContext
from datamodules.classification import ClassificationDataModule, Transform
from datamodules.transforms import tensor_eval_transform, tensor_train_transform
from visionsuite.datamodule import check_declared_num_classes
from visionsuite.errors import ConfigError, DatasetError

DIGITS_SPLIT_SEED = 0
DIGITS_TRAIN_FRACTION = 0.70
DIGITS_VAL_FRACTION = 0.15
_DIGITS_MAX_VALUE = 16.0


class TensorImageDataset(Dataset):
    """``(transform(images[i]), int(labels[i]))`` over in-memory image tensors."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, transform: Transform | None = None
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


@functools.lru_cache(maxsize=4)
def load_digit_tensors(image_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as ``(N, 3, image_size, image_size)`` float32 in [0, 1] and ``(N,)`` int64 labels.

    Cached per ``image_size``: callers must not modify the returned tensors in place.
    """
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
    except Exception as error:  # a broken or missing scikit-learn installation
        raise DatasetError(
            f"Cannot load scikit-learn's embedded digits ({type(error).__name__}: {error}); "
            "reinstall scikit-learn (pip install 'scikit-learn>=1.3')."
        ) from error
    images = torch.as_tensor(np.asarray(digits.images), dtype=torch.float32).unsqueeze(1) / _DIGITS_MAX_VALUE
    images = F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = images.clamp_(0.0, 1.0).expand(-1, 3, -1, -1).contiguous()
    labels = torch.as_tensor(np.asarray(digits.target), dtype=torch.int64)
    return images, labels


def digits_split_indices(num_images: int) -> dict[str, np.ndarray]:
    """The fixed ``train`` / ``val`` / ``test`` indices (independent of the run seed)."""
    permutation = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(num_images)
    num_train = int(DIGITS_TRAIN_FRACTION * num_images)
    num_val = int(DIGITS_VAL_FRACTION * num_images)
    return {
        "train": permutation[:num_train],
        "val": permutation[num_train : num_train + num_val],
        "test": permutation[num_train + num_val :],
    }


class DigitsDataModule(ClassificationDataModule):
    """scikit-learn's handwritten digits as a tiny 10-class, 3x32x32 dataset (no download, fast on CPU).

    Augmentation: random crop after zero padding ``crop_padding`` (no horizontal flip: digits are not
    mirror-symmetric), optional cutout. ``val_fraction`` is ignored (the validation split is fixed); the
    search split, when on, cuts the fixed training split.

    Args:
        data_dir: Unused (the data ships with scikit-learn); accepted so every data config has the key.
        image_size: Side of the upscaled images.
        crop_padding: Padding of the random crop (0 = no crop).
        cutout_length: Cutout square side (0 = off).
        num_classes: The config's class count (10), which the models follow; checked against the dataset.
        batch_size, eval_batch_size, num_workers, pin_memory, seed, val_fraction, search_split,
        search_split_fraction, drop_last: see :class:`ClassificationDataModule`.
    """

    num_classes = 10
    in_channels = 3
    uses_val_fraction = False

    def __init__(
        self,
        data_dir: str | Path | None = None,
        image_size: int = 32,
        crop_padding: int = 2,
        cutout_length: int = 0,
        num_classes: int | None = None,
        **loader_options: Any,
    ) -> None:
        check_declared_num_classes(num_classes, self.num_classes, "the digits dataset",
                                   fix=f"its label set is fixed: remove the override (data.num_classes={self.num_classes}).")
        super().__init__(**loader_options)  # batch sizes, workers, seed, splits: see ClassificationDataModule
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
            raise ConfigError(f"data.image_size must be an integer >= 8, got {image_size!r}.")
        self.save_hyperparameters(logger=False)
        self.data_dir = data_dir
        self.image_size = image_size
        self.crop_padding = int(crop_padding)
        self.cutout_length = int(cutout_length)
        self._mean_std: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def _split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = load_digit_tensors(self.image_size)
        indices = torch.as_tensor(digits_split_indices(len(labels))[name])
        return images[indices], labels[indices]

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and standard deviation of the training split (identical channels)."""
        if self._mean_std is None:
            images, _ = self._split("train")
            mean, std = float(images.mean()), float(images.std())
            self._mean_std = ((mean,) * 3, (std,) * 3)
        return self._mean_std

    def check_data(self) -> None:
        load_digit_tensors(self.image_size)

    def build_train_dataset(self, transform: Transform | None) -> Dataset:
        return TensorImageDataset(*self._split("train"), transform=transform)

    def build_val_dataset(self, transform: Transform | None) -> Dataset:
        return TensorImageDataset(*self._split("val"), transform=transform)

    def build_test_dataset(self, transform: Transform | None) -> Dataset:
        return TensorImageDataset(*self._split("test"), transform=transform)

    def train_transform(self) -> Transform:
        mean, std = self.mean_std
        return tensor_train_transform(
            mean,
            std,
            self.image_size,
            crop_padding=self.crop_padding,
            horizontal_flip=False,
            cutout_length=self.cutout_length,
        )

    def eval_transform(self) -> Transform:
        mean, std = self.mean_std
        return tensor_eval_transform(mean, std)

    def augment_context(self) -> AugmentContext:
        """Float tensors in [0, 1], pad-and-crop by ``crop_padding``, no flips (digits are not mirror-symmetric)."""
        mean, std = self.mean_std
        return AugmentContext(self.image_size, mean, std, input_kind="tensor", crop="pad",
                              crop_padding=self.crop_padding, autoaugment_policy="cifar10", flip=False)
