"""The base DataModule of image classification: loaders, hold-out validation and the DARTS search split.

Concrete DataModules (CIFAR, ImageNet, the embedded digits) only say how to build their raw training and
test datasets and which transforms to use; everything else lives here:

* ``val_fraction = 0`` (default): validate on the test split, as the DARTS-family papers train on the whole
  training set and report the test accuracy. ``val_fraction > 0``: hold out that fraction of the training
  set (a permutation seeded by ``seed``, so the same seed always holds out the same images).
* ``search_split = True``: the DARTS search split (arXiv:1806.09055, Sec. 3.1). The training set is cut into
  a *weights* part (the first ``search_split_fraction`` of its indices, as ``train_search.py`` of DARTS does)
  and an *architecture* part (the rest). Both get the training transform; ``train_dataloader()`` returns
  ``{"weights": loader, "arch": loader}`` (Lightning combines them) and ``val_dataloader()`` returns the
  architecture part with the evaluation transform. ``test_dataloader()`` keeps returning the test split.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.augment import Augmentation, AugmentContext, PairedViews
from datamodules.sampling import epoch_seeded_train_loader
from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError
from visionsuite.module import plain

#: Added to ``seed`` for the sampler of the architecture part of the search split, so the two parts are
#: shuffled by unrelated permutations (``seed + 1`` would replay the weights' order one epoch later).
ARCH_SAMPLER_SEED_OFFSET = 1_000_003

Transform = Callable[[Any], Any]


class TransformedSubset(Dataset):
    """The items ``indices`` of ``dataset`` (all when None), with ``transform`` applied to the image.

    ``dataset[i]`` must return ``(image, target)``. One raw dataset can back several views with different
    transforms (e.g. the architecture part of the search split is used for training and for validation).
    """

    def __init__(
        self, dataset: Dataset, indices: Sequence[int] | None = None, transform: Transform | None = None
    ) -> None:
        self.dataset = dataset
        self.indices = None if indices is None else [int(index) for index in indices]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = self.dataset[self.indices[index] if self.indices is not None else index]
        if self.transform is not None:
            image = self.transform(image)
        return image, target


def _check_positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}.")
    return value


class ClassificationDataModule(SuiteDataModule, ABC):
    """Shared machinery of the classification DataModules (see the module docstring for the split modes).

    Subclasses set :attr:`num_classes`, :attr:`in_channels` and :attr:`image_size` in ``__init__`` (no data
    access), and implement :meth:`build_train_dataset`, :meth:`build_test_dataset`, :meth:`train_transform`
    and :meth:`eval_transform`; optionally :meth:`check_data` (raise ``DatasetError``), :meth:`download_data`
    and :meth:`build_val_dataset` (a fixed validation split).

    Args:
        batch_size: Training batch size (of each loader in search mode).
        eval_batch_size: Validation/test batch size; defaults to ``batch_size``.
        num_workers: DataLoader worker processes (workers persist across epochs when > 0).
        pin_memory: Pin host memory (useful with a GPU).
        seed: Seed of the training order (epoch ``e`` uses ``seed + e``) and of the hold-out split.
        val_fraction: 0 validates on the test split; in (0, 1) holds out that fraction of the training set.
        search_split: Use the DARTS search split (weights part / architecture part).
        search_split_fraction: Fraction of the training set in the weights part, in (0, 1); DARTS uses 0.5.
        drop_last: Drop the last incomplete training batch (off by default; turn it on if a network with
            BatchNorm after global pooling could meet a last batch of one image).
        augment: A named augmentation policy of :mod:`datamodules.augment` (replaces the DataModule's own
            training transform); None keeps the DataModule's own transform.
        augment_ops: Augmentation ops to compose (after the policy's, if ``augment`` is also given).
        augment_options: Parameters of the ops (cutout length, MixUp / CutMix alpha, RandAugment N and M).
        paired_augment: A second policy: each training sample then also carries this view of the same image
            (``(image, target, other_view)``), e.g. the heavy view measured by AugRefine's refine phase.
    """

    num_classes: int
    in_channels: int
    image_size: int
    #: False for DataModules with a fixed validation split (they ignore ``val_fraction``).
    uses_val_fraction: bool = True

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        val_fraction: float = 0.0,
        search_split: bool = False,
        search_split_fraction: float = 0.5,
        drop_last: bool = False,
        augment: str | None = None,
        augment_ops: Sequence[str] | None = None,
        augment_options: dict[str, Any] | None = None,
        paired_augment: str | None = None,
    ) -> None:
        super().__init__()
        self.augmentation = Augmentation.from_config(augment, augment_ops, augment_options)
        self.paired_augmentation = Augmentation.from_config(paired_augment, None, augment_options,
                                                            key="data.paired_augment")
        if self.paired_augmentation is not None and (
            self.paired_augmentation.mixes_batches or (self.augmentation and self.augmentation.mixes_batches)
        ):
            raise ConfigError("data.paired_augment cannot be combined with MixUp / CutMix (in data.augment, "
                              "data.augment_ops or the paired policy): mixed batches have no per-image views.")
        self.batch_size = _check_positive_int(batch_size, "data.batch_size")
        self.eval_batch_size = (
            self.batch_size
            if eval_batch_size is None
            else _check_positive_int(eval_batch_size, "data.eval_batch_size")
        )
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"data.num_workers must be an integer >= 0, got {num_workers!r}.")
        self.num_workers = num_workers
        self.pin_memory = bool(pin_memory)
        self.seed = int(seed)
        if not 0.0 <= float(val_fraction) < 1.0:
            raise ConfigError(
                f"data.val_fraction must be in [0, 1) (0 = validate on the test split), got {val_fraction!r}."
            )
        self.val_fraction = float(val_fraction)
        if not 0.0 < float(search_split_fraction) < 1.0:
            raise ConfigError(
                "data.search_split_fraction must be in (0, 1) (the fraction of the training set that trains "
                f"the weights; the rest trains the architecture; DARTS uses 0.5), got {search_split_fraction!r}."
            )
        self.search_split = bool(search_split)
        self.search_split_fraction = float(search_split_fraction)
        if self.search_split and self.val_fraction > 0 and self.uses_val_fraction:
            raise ConfigError(
                "data.val_fraction must be 0 when data.search_split=true: in search mode the architecture "
                f"part of the training set is the validation set (got data.val_fraction={val_fraction!r})."
            )
        self.drop_last = bool(drop_last)

        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None
        self.search_weights_dataset: Dataset | None = None
        self.search_arch_dataset: Dataset | None = None
        self._is_set_up = False

    # ----------------------------------------------------------------------------------------- hooks
    def check_data(self) -> None:
        """Raise ``DatasetError`` (naming the path and how to get the data) if the data is missing or corrupt."""

    def download_data(self) -> None:
        """Download the data if the DataModule supports it and was asked to (runs on one process only)."""

    @abstractmethod
    def build_train_dataset(self, transform: Transform | None) -> Dataset:
        """The whole raw training set, returning ``(transform(image), label)`` (``image`` when None)."""

    @abstractmethod
    def build_test_dataset(self, transform: Transform | None) -> Dataset:
        """The test set, returning ``(transform(image), label)``."""

    def build_val_dataset(self, transform: Transform | None) -> Dataset | None:
        """A fixed validation set, or None to validate on the test set / a hold-out of the training set."""
        return None

    @abstractmethod
    def train_transform(self) -> Transform:
        """Transform of training images (with augmentation)."""

    @abstractmethod
    def eval_transform(self) -> Transform:
        """Transform of validation/test images (deterministic)."""

    def augment_context(self) -> AugmentContext:
        """What the augmentation toolkit needs to know about the images (for ``data.augment``)."""
        raise ConfigError(f"{type(self).__name__} does not support data.augment / data.augment_ops / "
                          "data.paired_augment; set them to null.")

    def training_transform(self) -> Transform:
        """The ``data.augment`` pipeline when one is configured, else the DataModule's own transform."""
        if self.augmentation is not None:
            return self.augmentation.image_transform(self.augment_context())
        return self.train_transform()

    def _training_view(self, raw_train: Dataset, indices: Sequence[int] | None, transform: Transform) -> Dataset:
        if self.paired_augmentation is None:
            return TransformedSubset(raw_train, indices, transform)
        return PairedViews(raw_train, indices, transform, self.paired_augmentation.image_transform(
            self.augment_context()))

    # ------------------------------------------------------------------------------ Lightning hooks
    def prepare_data(self) -> None:
        """Download if asked (Lightning runs this on one process per node), then check the files."""
        self.download_data()
        self.check_data()

    def save_hyperparameters(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's ``save_hyperparameters`` with Hydra containers turned into plain ones, so checkpoints load
        with ``torch.load(weights_only=True)``."""
        kwargs.setdefault("frame", inspect.currentframe().f_back)
        super().save_hyperparameters(*args, **kwargs)
        for key, value in list(self.hparams.items()):
            self.hparams[key] = plain(value)

    def setup(self, stage: str | None = None) -> None:
        """Check the data and build every split (on every process; idempotent)."""
        if self._is_set_up:
            return
        self.check_data()
        train_transform, eval_transform = self.training_transform(), self.eval_transform()
        raw_train = self.build_train_dataset(None)
        num_train = len(raw_train)  # type: ignore[arg-type]
        self.test_dataset = self.build_test_dataset(eval_transform)

        if self.search_split:
            weights_indices, arch_indices = self.search_split_indices(raw_train, num_train)
            self.search_weights_dataset = TransformedSubset(raw_train, weights_indices, train_transform)
            self.search_arch_dataset = TransformedSubset(raw_train, arch_indices, train_transform)
            self.train_dataset = self.search_weights_dataset
            self.val_dataset = TransformedSubset(raw_train, arch_indices, eval_transform)
        else:
            fixed_val = self.build_val_dataset(eval_transform)
            if fixed_val is not None:
                self.train_dataset = self._training_view(raw_train, None, train_transform)
                self.val_dataset = fixed_val
            elif self.holds_out_validation:
                train_indices, val_indices = self.hold_out_indices(raw_train, num_train)
                self.train_dataset = self._training_view(raw_train, train_indices, train_transform)
                self.val_dataset = TransformedSubset(raw_train, val_indices, eval_transform)
            else:
                self.train_dataset = self._training_view(raw_train, None, train_transform)
                self.val_dataset = self.test_dataset
        self._is_set_up = True

    def search_split_indices(self, raw_train: Dataset, num_train: int) -> tuple[list[int], list[int]]:
        """(weights, architecture) indices of the search split: the first ``search_split_fraction`` of the
        training set and the rest (DARTS). Subclasses may pick other subsets (ImageNet: class-balanced)."""
        num_weights = int(math.floor(self.search_split_fraction * num_train))
        if not 0 < num_weights < num_train:
            raise ConfigError(
                f"data.search_split_fraction={self.search_split_fraction} leaves an empty part of the "
                f"{num_train}-image training set ({num_weights} for the weights, "
                f"{num_train - num_weights} for the architecture)."
            )
        return list(range(num_weights)), list(range(num_weights, num_train))

    @property
    def holds_out_validation(self) -> bool:
        """Whether validation uses images held out of the training set (:meth:`hold_out_indices`)."""
        return self.val_fraction > 0

    def hold_out_indices(self, raw_train: Dataset, num_train: int) -> tuple[list[int], list[int]]:
        """Sorted (training, held-out) indices for ``val_fraction``; depends only on ``seed`` and the size.
        Subclasses may hold out other subsets (ImageNet: the last images of every class)."""
        num_val = int(round(self.val_fraction * num_train))
        if not 0 < num_val < num_train:
            raise ConfigError(
                f"data.val_fraction={self.val_fraction} holds out {num_val} of {num_train} training images; "
                "choose a fraction that leaves both parts non-empty."
            )
        permutation = torch.randperm(num_train, generator=torch.Generator().manual_seed(self.seed)).tolist()
        return sorted(permutation[num_val:]), sorted(permutation[:num_val])

    def train_dataloader(self) -> DataLoader | dict[str, DataLoader]:
        """The training loader, or ``{"weights": ..., "arch": ...}`` in search mode."""
        self.setup("fit")
        if self.search_split:
            return {
                "weights": self._train_loader(self.search_weights_dataset, self.seed),
                "arch": self._train_loader(self.search_arch_dataset, self.seed + ARCH_SAMPLER_SEED_OFFSET),
            }
        return self._train_loader(self.train_dataset, self.seed)

    def val_dataloader(self) -> DataLoader:
        """Validation loader: test split, held-out part, fixed val split, or the architecture part."""
        self.setup("validate")
        return self._eval_loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader:
        """Test loader (evaluation transform, fixed order)."""
        self.setup("test")
        return self._eval_loader(self.test_dataset)

    def predict_dataloader(self) -> DataLoader:
        """Prediction loader: the test split (evaluation transform, fixed order)."""
        return self.test_dataloader()

    # ------------------------------------------------------------------------------------- helpers
    def _train_loader(self, dataset: Dataset | None, seed: int) -> DataLoader:
        assert dataset is not None
        return epoch_seeded_train_loader(
            self,
            dataset,  # type: ignore[arg-type]
            seed,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=self.drop_last,
            collate_fn=self.augmentation.collate(self.num_classes) if self.augmentation is not None else None,
        )

    @property
    def validates_on_test_split(self) -> bool:
        """True when validation scores the test split (``val_fraction=0`` with no fixed validation split), as
        the DARTS-family papers do: then no checkpoint may be chosen by a validation metric."""
        return not self.search_split and not self.holds_out_validation and self.uses_val_fraction

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader:
        assert dataset is not None
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=False,
            persistent_workers=self.num_workers > 0,
        )
