"""Tiny CIFAR-10/100 datasets in the exact official "python version" pickle format.

The official files were written by Python 2's ``cPickle`` (protocol 2): dictionaries whose keys and strings
are Python-2 ``str`` objects, so they load as ``str`` with ``pickle.load(f, encoding="latin1")`` (what
torchvision does) and as ``bytes`` with ``encoding="bytes"`` (the snippet of the CIFAR web page). The writer
below emits the same opcodes, so both ways of reading work exactly as on the real files:

* ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``: ``{b"batch_label", b"labels", b"data",
  b"filenames"}``, ``data`` a ``uint8`` array of shape ``(N, 3072)``: the red, green and blue 32x32 planes,
  each row-major; ``batches.meta``: ``{b"num_cases_per_batch", b"label_names", b"num_vis"}``.
* ``cifar-100-python/train`` and ``test``: ``{b"filenames", b"batch_label", b"fine_labels",
  b"coarse_labels", b"data"}``; ``meta``: ``{b"fine_label_names", b"coarse_label_names"}``.

Images are deterministic (given ``seed``) class-dependent patterns: a colour per ``label % 10`` and stripes
whose orientation and period depend on ``label // 10``, plus noise, so that a small network can learn them.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR10_LABEL_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR_IMAGE_SIZE = 32
NUM_CIFAR10_TRAIN_BATCHES = 5

# One RGB colour per ``label % 10``.
_PALETTE = np.array(
    [
        (220, 40, 40), (40, 200, 40), (40, 60, 220), (220, 200, 40), (200, 40, 200),
        (40, 200, 200), (240, 140, 20), (130, 70, 20), (150, 150, 150), (90, 20, 160),
    ],
    dtype=np.float64,
)  # fmt: skip
_STRIPE_PERIODS = (4, 8, 16)
_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]


class _Python2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes ``bytes`` as Python-2 ``str`` opcodes, like the official files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: bytes) -> None:
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", size) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        # NumPy >= 2 names its array reconstructor ``numpy._core.multiarray``; the official files (and every
        # NumPy version) use ``numpy.core.multiarray``.
        if obj is _NUMPY_RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump_python2_pickle(obj: Any, path: str | Path) -> None:
    """Write ``obj`` to ``path`` as Python 2's ``cPickle.dump(obj, f, 2)`` would (``bytes`` -> ``str``)."""
    with open(path, "wb") as handle:
        _dump(obj, handle)


def _dump(obj: Any, handle: IO[bytes]) -> None:
    _Python2Pickler(handle, protocol=2).dump(obj)


def _balanced_labels(count: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(count) % num_classes)


def _pattern_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(N, 3072)`` uint8 images: class colour, class stripes (random phase) and noise."""
    size = CIFAR_IMAGE_SIZE
    rows, cols = np.mgrid[0:size, 0:size]
    coordinates = (rows, cols, rows + cols, rows - cols + size)
    images = np.empty((len(labels), 3, size, size), dtype=np.uint8)
    for position, label in enumerate(labels):
        kind = int(label) // 10
        period = _STRIPE_PERIODS[(kind // 4) % len(_STRIPE_PERIODS)]
        coordinate = coordinates[kind % 4] + int(rng.integers(period))
        stripes = (coordinate // (period // 2)) % 2
        colour = _PALETTE[int(label) % 10][:, None, None]
        image = colour * (0.45 + 0.55 * stripes) + rng.normal(0.0, 12.0, size=(3, size, size))
        images[position] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return images.reshape(len(labels), 3 * size * size)


def _filenames(labels: np.ndarray, label_names: tuple[str, ...] | list[str], offset: int) -> list[bytes]:
    return [f"{label_names[int(label)]}_s_{offset + i:06d}.png".encode() for i, label in enumerate(labels)]


def write_cifar10(root: str | Path, num_train: int = 100, num_test: int = 20, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 in ``<root>/cifar-10-batches-py`` (official layout and pickle format).

    Args:
        root: The data directory (``data.data_dir``); created if needed.
        num_train: Training images, spread as evenly as possible over ``data_batch_1`` .. ``data_batch_5``.
        num_test: Images of ``test_batch``.
        seed: Seed of labels, stripe phases and noise (same seed, same bytes).

    Returns:
        ``root`` as a :class:`~pathlib.Path` (the directory to pass as ``data.data_dir``).
    """
    if num_train < NUM_CIFAR10_TRAIN_BATCHES or num_test < 1:
        raise ValueError(f"need num_train >= {NUM_CIFAR10_TRAIN_BATCHES} and num_test >= 1")
    root = Path(root)
    folder = root / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = CIFAR10_LABEL_NAMES

    train_labels = _balanced_labels(num_train, len(names), rng)
    train_images = _pattern_images(train_labels, rng)
    batches = np.array_split(np.arange(num_train), NUM_CIFAR10_TRAIN_BATCHES)
    for number, indices in enumerate(batches, start=1):
        labels = train_labels[indices]
        batch = {
            b"batch_label": f"training batch {number} of {NUM_CIFAR10_TRAIN_BATCHES}".encode(),
            b"labels": [int(label) for label in labels],
            b"data": train_images[indices],
            b"filenames": _filenames(labels, names, int(indices[0])),
        }
        dump_python2_pickle(batch, folder / f"data_batch_{number}")

    test_labels = _balanced_labels(num_test, len(names), rng)
    test_batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": [int(label) for label in test_labels],
        b"data": _pattern_images(test_labels, rng),
        b"filenames": _filenames(test_labels, names, 0),
    }
    dump_python2_pickle(test_batch, folder / "test_batch")
    meta = {
        b"num_cases_per_batch": len(batches[0]),
        b"label_names": [name.encode() for name in names],
        b"num_vis": 3 * CIFAR_IMAGE_SIZE * CIFAR_IMAGE_SIZE,
    }
    dump_python2_pickle(meta, folder / "batches.meta")
    return root


def write_cifar100(root: str | Path, num_train: int = 200, num_test: int = 100, seed: int = 0) -> Path:
    """Write a tiny CIFAR-100 in ``<root>/cifar-100-python`` (official layout and pickle format).

    Class names are placeholders (``fine_class_00`` .. ``fine_class_99``, ``coarse_class_00`` ..
    ``coarse_class_19``) and the coarse label is ``fine // 5`` (the official grouping differs; only the
    format matters here).

    Args:
        root: The data directory (``data.data_dir``); created if needed.
        num_train: Images of ``train`` (with >= 100 every class appears).
        num_test: Images of ``test``.
        seed: Seed of labels, stripe phases and noise.

    Returns:
        ``root`` as a :class:`~pathlib.Path` (the directory to pass as ``data.data_dir``).
    """
    if num_train < 1 or num_test < 1:
        raise ValueError("need num_train >= 1 and num_test >= 1")
    root = Path(root)
    folder = root / CIFAR100_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fine_names = [f"fine_class_{index:02d}" for index in range(100)]
    coarse_names = [f"coarse_class_{index:02d}" for index in range(20)]

    for file_name, count, batch_label in (
        ("train", num_train, b"training batch 1 of 1"),
        ("test", num_test, b"testing batch 1 of 1"),
    ):
        fine_labels = _balanced_labels(count, 100, rng)
        batch = {
            b"filenames": _filenames(fine_labels, fine_names, 0),
            b"batch_label": batch_label,
            b"fine_labels": [int(label) for label in fine_labels],
            b"coarse_labels": [int(label) // 5 for label in fine_labels],
            b"data": _pattern_images(fine_labels, rng),
        }
        dump_python2_pickle(batch, folder / file_name)
    meta = {
        b"fine_label_names": [name.encode() for name in fine_names],
        b"coarse_label_names": [name.encode() for name in coarse_names],
    }
    dump_python2_pickle(meta, folder / "meta")
    return root
