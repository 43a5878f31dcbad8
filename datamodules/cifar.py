"""CIFAR-10 / CIFAR-100 from the official "python version" pickles, read through torchvision's classes.

Expected layout (what the official archives extract to):

* CIFAR-10: ``<data_dir>/cifar-10-batches-py/{data_batch_1..data_batch_5, test_batch, batches.meta}``
* CIFAR-100: ``<data_dir>/cifar-100-python/{train, test, meta}``

torchvision checks the md5 sums of the official files, which the tiny files of the tests (see
:mod:`datamodules.writers.cifar`) cannot match, so :class:`LocalCIFAR10` / :class:`LocalCIFAR100` only
require the files to be present unless ``verify_checksums=True``; in exchange they check the content (a
readable pickle, the expected keys, ``uint8`` rows of 3072 values, one label in range per row) and raise
:class:`~visionsuite.errors.DatasetError` naming the faulty file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, CIFAR100
from torchvision.datasets.utils import check_integrity

from datamodules.augment import AugmentContext
from datamodules.classification import ClassificationDataModule, Transform
from datamodules.transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    CIFAR_IMAGE_SIZE,
    cifar_eval_transform,
    cifar_train_transform,
)
from visionsuite.datamodule import check_declared_num_classes
from visionsuite.errors import ConfigError, DatasetError

_ROW_SIZE = 3 * CIFAR_IMAGE_SIZE * CIFAR_IMAGE_SIZE


class _LocalCIFARMixin:
    """Presence-based integrity check, optional md5 check, and content validation with clear errors."""

    # Provided by the torchvision class the mixin is combined with.
    base_folder: str
    url: str
    train_list: list[list[str]]
    test_list: list[list[str]]
    meta: dict[str, str]
    root: str
    data: Any
    targets: list[int]
    # Provided by the concrete classes below.
    display_name: str
    label_key: str
    num_classes: int

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Transform | None = None,
        target_transform: Transform | None = None,
        download: bool = False,
        verify_checksums: bool = False,
    ) -> None:
        self.verify_checksums = bool(verify_checksums)
        root = Path(root).expanduser()
        if not download:
            self.check_files(root)
        try:
            super().__init__(  # type: ignore[call-arg]
                root, train=train, transform=transform, target_transform=target_transform, download=download
            )
        except DatasetError:
            raise
        except Exception as error:
            self._raise_dataset_error(root, train, error)
        self._validate_loaded(root, train)

    # ------------------------------------------------------------------------ file-level checks
    @classmethod
    def all_file_names(cls) -> list[str]:
        """Every file of the official layout, in the order of torchvision's lists."""
        return [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]

    @classmethod
    def how_to_get(cls, root: Path) -> str:
        """The sentence that says how to obtain the data."""
        return (
            f"To get {cls.display_name}: run once with data.download=true on a machine with internet access "
            f"(it fetches {cls.url}), or copy the extracted '{cls.base_folder}' folder of that archive "
            f"to {root / cls.base_folder}."
        )

    @classmethod
    def expected_layout(cls, root: Path) -> str:
        return f"{root / cls.base_folder}/{{{', '.join(cls.all_file_names())}}}"

    @classmethod
    def check_files(cls, root: str | Path) -> None:
        """Raise DatasetError if the folder or one of its files is missing (no file is read)."""
        root = Path(root).expanduser()
        folder = root / cls.base_folder
        if not folder.is_dir():
            raise DatasetError(
                f"{cls.display_name} not found: expected the folder {folder} (data.data_dir={root}) laid out as "
                f"{cls.expected_layout(root)}. {cls.how_to_get(root)}"
            )
        missing = [name for name in cls.all_file_names() if not (folder / name).is_file()]
        if missing:
            raise DatasetError(
                f"{cls.display_name} is incomplete: missing {', '.join(str(folder / name) for name in missing)}; "
                f"expected the layout {cls.expected_layout(root)}. {cls.how_to_get(root)}"
            )

    def _check_integrity(self) -> bool:
        """torchvision's md5 check when ``verify_checksums``, else "every file is present"."""
        if self.verify_checksums:
            return super()._check_integrity()  # type: ignore[misc]
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        if not path.is_file():
            self.check_files(Path(self.root))
        if self.verify_checksums and not check_integrity(str(path), self.meta["md5"]):
            raise DatasetError(self._checksum_message(Path(self.root), [path]))
        entry = _load_pickle(path, self.how_to_get(Path(self.root)))
        key = self.meta["key"]
        names = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(names, (list, tuple)) or len(names) != self.num_classes:
            raise DatasetError(
                f"{path} is not a valid {self.display_name} metadata file: expected a dict whose '{key}' lists "
                f"{self.num_classes} class names. {self.how_to_get(Path(self.root))}"
            )
        self.classes = [str(name) for name in names]
        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}

    def validate_batch_file(self, path: Path) -> int:
        """Check one batch file (pickle, keys, array sizes, labels); return its number of images."""
        entry = _load_pickle(path, self.how_to_get(Path(self.root)))
        if not isinstance(entry, dict):
            raise DatasetError(f"{path} is corrupt: expected a pickled dict, found {type(entry).__name__}.")
        missing = [key for key in ("data", self.label_key) if key not in entry]
        if missing:
            raise DatasetError(
                f"{path} is corrupt: missing the key(s) {missing} (a {self.display_name} batch holds 'data' and "
                f"'{self.label_key}'). {self.how_to_get(Path(self.root))}"
            )
        data = np.asarray(entry["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW_SIZE:
            raise DatasetError(
                f"{path} is corrupt: 'data' must be a uint8 array of shape (N, {_ROW_SIZE}), found "
                f"{data.dtype} {data.shape}."
            )
        labels = np.asarray(entry[self.label_key])
        if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(
                f"{path} is corrupt: {data.shape[0]} images but '{self.label_key}' has shape {labels.shape} "
                f"({labels.dtype}); expected {data.shape[0]} integer labels."
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise DatasetError(
                f"{path} is corrupt: labels must lie in [0, {self.num_classes}), found "
                f"[{labels.min()}, {labels.max()}]."
            )
        return int(data.shape[0])

    # ----------------------------------------------------------------------------- diagnostics
    def _split_files(self, root: Path, train: bool) -> list[Path]:
        names = [name for name, _ in (self.train_list if train else self.test_list)]
        return [root / self.base_folder / name for name in names]

    def _checksum_message(self, root: Path, paths: list[Path]) -> str:
        return (
            f"{self.display_name}: md5 checksum mismatch for {', '.join(str(path) for path in paths)} "
            "(data.verify_checksums=true expects the official files). Re-download or re-copy them, or set "
            f"data.verify_checksums=false to only require the files to be present. {self.how_to_get(root)}"
        )

    def _raise_dataset_error(self, root: Path, train: bool, error: Exception) -> None:
        """Turn a failure of torchvision's loading into a DatasetError naming the faulty file."""
        self.root = str(root)
        if isinstance(error, RuntimeError) and "not found or corrupted" in str(error):
            self.check_files(root)  # missing files (e.g. after a failed download)
            if self.verify_checksums:
                checksums = dict(self.train_list + self.test_list)
                wrong = [
                    root / self.base_folder / name
                    for name in checksums
                    if not check_integrity(str(root / self.base_folder / name), checksums[name])
                ]
                raise DatasetError(self._checksum_message(root, wrong)) from error
        if not (root / self.base_folder).is_dir() or isinstance(error, OSError):
            raise DatasetError(
                f"Could not obtain {self.display_name} in {root / self.base_folder} "
                f"({type(error).__name__}: {error}). {self.how_to_get(root)}"
            ) from error
        for path in self._split_files(root, train):
            self.validate_batch_file(path)
        raise DatasetError(
            f"Could not read {self.display_name} from {root / self.base_folder} "
            f"({type(error).__name__}: {error}). {self.how_to_get(root)}"
        ) from error

    def _validate_loaded(self, root: Path, train: bool) -> None:
        data = np.asarray(self.data)
        labels = np.asarray(self.targets)
        consistent = (
            data.dtype == np.uint8
            and data.shape[1:] == (CIFAR_IMAGE_SIZE, CIFAR_IMAGE_SIZE, 3)
            and labels.shape == (data.shape[0],)
            and np.issubdtype(labels.dtype, np.integer)
            and (labels.size == 0 or (labels.min() >= 0 and labels.max() < self.num_classes))
        )
        if not consistent:
            for path in self._split_files(root, train):
                self.validate_batch_file(path)
            raise DatasetError(
                f"{self.display_name} in {root / self.base_folder} is inconsistent: {data.shape[0]} images of "
                f"shape {data.shape[1:]} ({data.dtype}) for {len(self.targets)} labels. {self.how_to_get(root)}"
            )


def _load_pickle(path: Path, how_to_get: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle, encoding="latin1")
    except OSError as error:
        raise DatasetError(f"Cannot read {path} ({error}). {how_to_get}") from error
    except Exception as error:  # pickle raises many types on damaged input (EOFError, UnpicklingError, ...)
        raise DatasetError(
            f"{path} is corrupt: not a readable pickle, e.g. truncated by an interrupted copy or download "
            f"({type(error).__name__}: {error}). {how_to_get}"
        ) from error


class LocalCIFAR10(_LocalCIFARMixin, CIFAR10):
    """torchvision's CIFAR10 that accepts any well-formed files unless ``verify_checksums=True``.

    Args:
        root: The data directory holding ``cifar-10-batches-py``.
        train: Training set (the five data batches) or test set (``test_batch``).
        transform: Applied to the PIL image.
        target_transform: Applied to the label.
        download: Download and extract the official archive first (needs internet access).
        verify_checksums: Keep torchvision's md5 check of the official files.
    """

    display_name = "CIFAR-10"
    label_key = "labels"
    num_classes = 10


class LocalCIFAR100(_LocalCIFARMixin, CIFAR100):
    """torchvision's CIFAR100 (fine labels) that accepts any well-formed files unless ``verify_checksums=True``.

    Args: as :class:`LocalCIFAR10`, with ``root`` holding ``cifar-100-python``.
    """

    display_name = "CIFAR-100"
    label_key = "fine_labels"
    num_classes = 100


_DATASETS: dict[str, tuple[type[_LocalCIFARMixin], tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (LocalCIFAR10, CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (LocalCIFAR100, CIFAR100_MEAN, CIFAR100_STD),
}


class CIFARDataModule(ClassificationDataModule):
    """CIFAR-10 or CIFAR-100 with the DARTS augmentation (crop 4, flip, cutout 16), optional AutoAugment.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        data_dir: Directory holding ``cifar-10-batches-py`` / ``cifar-100-python``.
        download: Download the official archive in ``prepare_data`` (needs internet access).
        cutout_length: Cutout square side (16 when training a found architecture; 0 = off, e.g. for search).
        autoaugment: Add torchvision's AutoAugment with the CIFAR10 policy.
        crop_padding: Padding of the random 32x32 crop (0 = no crop).
        horizontal_flip: Random horizontal flips.
        verify_checksums: Check the md5 sums of the official files (off: the files only need to be present
            and well formed, which lets tests use tiny files).
        mean, std: Per-channel normalisation; ``None``: the dataset's statistics (``datamodules.transforms``).
            A method whose official code normalises otherwise sets its values (the networks it loads expect them).
        num_classes: The config's class count (10 / 100), which the models follow; checked against the dataset.
        batch_size, eval_batch_size, num_workers, pin_memory, seed, val_fraction, search_split,
        search_split_fraction, drop_last: see :class:`ClassificationDataModule`.
    """

    in_channels = 3
    image_size = CIFAR_IMAGE_SIZE

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        download: bool = False,
        cutout_length: int = 16,
        autoaugment: bool = False,
        crop_padding: int = 4,
        horizontal_flip: bool = True,
        verify_checksums: bool = False,
        mean: list[float] | tuple[float, ...] | None = None,
        std: list[float] | tuple[float, ...] | None = None,
        num_classes: int | None = None,
        **loader_options: Any,
    ) -> None:
        super().__init__(**loader_options)  # batch sizes, workers, seed, splits: see ClassificationDataModule
        if name not in _DATASETS:
            raise ConfigError(f"data.name must be one of {sorted(_DATASETS)}, got {name!r}.")
        self.save_hyperparameters(logger=False)
        self.name = name
        self.data_dir = Path(data_dir).expanduser()
        self.download = bool(download)
        self.cutout_length = int(cutout_length)
        self.autoaugment = bool(autoaugment)
        self.crop_padding = int(crop_padding)
        self.horizontal_flip = bool(horizontal_flip)
        self.verify_checksums = bool(verify_checksums)
        self.dataset_class, self.mean, self.std = _DATASETS[name]
        for label, given in (("mean", mean), ("std", std)):
            if given is not None:
                values = tuple(float(value) for value in given)
                if len(values) != 3 or (label == "std" and min(values) <= 0):
                    raise ConfigError(f"data.{label}={list(given)}: give 3 per-channel values"
                                      f"{' > 0' if label == 'std' else ''} (RGB).")
                setattr(self, label, values)
        self.num_classes = self.dataset_class.num_classes
        check_declared_num_classes(num_classes, self.num_classes, self.dataset_class.display_name,
                                   fix=f"its label set is fixed: remove the override (data.num_classes={self.num_classes}).")

    def download_data(self) -> None:
        if self.download:
            self._dataset(train=False, transform=None, download=True)

    def check_data(self) -> None:
        if not self.download:  # with data.download=true the files are fetched in prepare_data
            self.dataset_class.check_files(self.data_dir)

    def build_train_dataset(self, transform: Transform | None) -> Dataset:
        return self._dataset(train=True, transform=transform)

    def build_test_dataset(self, transform: Transform | None) -> Dataset:
        return self._dataset(train=False, transform=transform)

    def train_transform(self) -> Transform:
        return cifar_train_transform(
            self.mean,
            self.std,
            crop_padding=self.crop_padding,
            horizontal_flip=self.horizontal_flip,
            cutout_length=self.cutout_length,
            autoaugment=self.autoaugment,
        )

    def eval_transform(self) -> Transform:
        return cifar_eval_transform(self.mean, self.std)

    def augment_context(self) -> AugmentContext:
        """32x32 PIL images, pad-and-crop by ``crop_padding``, AutoAugment's CIFAR10 policy (``data.augment``)."""
        return AugmentContext(CIFAR_IMAGE_SIZE, self.mean, self.std, input_kind="pil", crop="pad",
                              crop_padding=self.crop_padding, autoaugment_policy="cifar10")

    def _dataset(self, train: bool, transform: Transform | None, download: bool = False) -> Dataset:
        return self.dataset_class(  # type: ignore[call-arg]
            self.data_dir,
            train=train,
            transform=transform,
            download=download,
            verify_checksums=self.verify_checksums,
        )
