"""Writer of the logit dataset of the logit defense (arXiv:1906.10973): the attack phase's product.

Layout of a logit dataset directory::

    <root>/manifest.json              format, class count, attack entries, classifier identity, normalisation,
                                      shard size, seed, and per split: sample count and shard count
    <root>/<split>/shard_00000.npz    one shard: ``index`` (n,) int64 sample indices in the split,
                                      ``label`` (n,) int64, ``clean`` (n, C) float32 logits,
                                      ``adv`` (n, K, C) float32 logits under the K attacks (manifest order)

Shard ``s`` of a split holds the samples ``[s * shard_size, (s + 1) * shard_size)``. Each shard is written
to a temporary file and renamed (all or nothing), so a shard file exists exactly when it is complete: an
interrupted attack resumes at the first missing shard. The ``.npz`` archives are written with fixed zip
timestamps, so the same arrays always give the same bytes (a resumed dataset equals an uninterrupted one).
The manifest is written first and never changes; opening an existing directory with other settings is an
error rather than a silent mix of two datasets.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from visionsuite.errors import ConfigError
from visionsuite.io import atomic_file, atomic_write_json

MANIFEST = "manifest.json"
FORMAT_NAME = "visionsuite-logit-dataset"
FORMAT_VERSION = 1
SHARD_ARRAYS = ("index", "label", "clean", "adv")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard_{index:05d}.npz"


def write_npz_deterministic(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` (what ``numpy.load`` reads), atomically and byte-stable.

    ``numpy.savez`` stamps each member with the current time; this writer uses a fixed timestamp, so equal
    arrays give equal files.
    """
    path = Path(path)
    with atomic_file(path, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return path


class LogitDatasetWriter:
    """Creates (or reopens, to resume) a logit dataset directory and writes its shards.

    Args:
        root: The dataset directory.
        num_classes: C, the classifier's number of logits.
        attacks: Attack name -> its config entry (``{name: pgd, eps: ...}``), in the order of ``adv``.
        splits: Split name -> number of samples (``{"train": 1257, "test": 271}``).
        shard_size: Samples per shard.
        classifier: The classifier's identity (path, sha256, class), stored so a defender can be checked
            against the classifier it defends.
        normalization: ``{"mean": [...], "std": [...]}`` the classifier applies to [0, 1] images.
        seed: The seed the attacks' random starts derive from.
        strides: Split name -> stride: sample ``i`` of the logit split is image ``i * stride`` of the image
            split (an evenly spread subset of a large split); 1 when absent.
    """

    def __init__(self, root: str | os.PathLike[str], num_classes: int, attacks: Mapping[str, Mapping[str, Any]],
                 splits: Mapping[str, int], shard_size: int, classifier: Mapping[str, Any] | None = None,
                 normalization: Mapping[str, Any] | None = None, seed: int = 0,
                 strides: Mapping[str, int] | None = None) -> None:
        if shard_size < 1:
            raise ConfigError(f"shard_size must be >= 1, got {shard_size}.")
        if not attacks:
            raise ConfigError("A logit dataset needs at least one attack.")
        self.root = Path(root)
        self.num_classes = int(num_classes)
        self.attack_names = list(attacks)
        self.shard_size = int(shard_size)
        self.manifest: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "num_classes": self.num_classes,
            "attack_names": self.attack_names,
            "attacks": {name: dict(spec) for name, spec in attacks.items()},
            "classifier": dict(classifier or {}),
            "normalization": dict(normalization or {}),
            "shard_size": self.shard_size,
            "seed": int(seed),
            "splits": {name: {"num_samples": int(count), "num_shards": math.ceil(int(count) / self.shard_size),
                              "stride": int((strides or {}).get(name, 1))}
                       for name, count in splits.items()},
        }

    def open(self) -> LogitDatasetWriter:
        """Write the manifest, or check that an existing one was made with the same settings."""
        manifest_path = self.root / MANIFEST
        if manifest_path.is_file():
            existing = json.loads(manifest_path.read_text(encoding="utf-8"))
            if _comparable(existing) != _comparable(self.manifest):
                differing = sorted(key for key in set(existing) | set(self.manifest)
                                   if existing.get(key) != self.manifest.get(key))
                raise ConfigError(
                    f"The logit dataset {self.root} was made with other settings (differing: {', '.join(differing)}); "
                    "resuming would mix two datasets. Delete that directory or write to another one."
                )
        else:
            atomic_write_json(manifest_path, self.manifest)
        return self

    def shard_path(self, split: str, shard: int) -> Path:
        return self.root / split / shard_name(shard)

    def shard_rows(self, split: str, shard: int) -> range:
        """The rows (positions in the logit split) of shard ``shard`` of ``split``."""
        total = self.manifest["splits"][split]["num_samples"]
        return range(shard * self.shard_size, min((shard + 1) * self.shard_size, total))

    def shard_indices(self, split: str, shard: int) -> list[int]:
        """The image indices (in the image split) of shard ``shard`` of ``split``."""
        stride = self.manifest["splits"][split]["stride"]
        return [row * stride for row in self.shard_rows(split, shard)]

    def pending_shards(self) -> list[tuple[str, int]]:
        """``(split, shard)`` of every shard not on disk yet, in writing order."""
        return [(split, shard) for split, info in self.manifest["splits"].items()
                for shard in range(info["num_shards"]) if not self.shard_path(split, shard).is_file()]

    def write_shard(self, split: str, shard: int, index: np.ndarray, label: np.ndarray, clean: np.ndarray,
                    adv: np.ndarray) -> Path:
        """Check the arrays against the manifest and write shard ``shard`` of ``split`` atomically."""
        expected = self.shard_indices(split, shard)
        count, classes, attacks = len(expected), self.num_classes, len(self.attack_names)
        arrays = {"index": np.asarray(index, dtype=np.int64), "label": np.asarray(label, dtype=np.int64),
                  "clean": np.asarray(clean, dtype=np.float32), "adv": np.asarray(adv, dtype=np.float32)}
        shapes = {"index": (count,), "label": (count,), "clean": (count, classes), "adv": (count, attacks, classes)}
        for key, shape in shapes.items():
            if arrays[key].shape != shape:
                raise ValueError(f"shard {split}/{shard}: {key} has shape {arrays[key].shape}, expected {shape}")
        if arrays["index"].tolist() != expected:
            raise ValueError(f"shard {split}/{shard} must hold the images {expected[0]}..{expected[-1]} in order")
        return write_npz_deterministic(self.shard_path(split, shard), arrays)


def _comparable(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest as JSON would give it back (tuples become lists)."""
    return json.loads(json.dumps(manifest, default=str))


def write_logit_dataset(root: str | os.PathLike[str], splits: Mapping[str, Mapping[str, np.ndarray]],
                        attacks: Mapping[str, Mapping[str, Any]], shard_size: int = 64,
                        classifier: Mapping[str, Any] | None = None, seed: int = 0) -> Path:
    """Write a whole logit dataset from in-memory arrays (tests and demos).

    Args:
        splits: split -> ``{"label": (N,), "clean": (N, C), "adv": (N, K, C)}``.
    """
    first = next(iter(splits.values()))
    writer = LogitDatasetWriter(root, first["clean"].shape[1], attacks,
                                {name: len(arrays["label"]) for name, arrays in splits.items()}, shard_size,
                                classifier=classifier, seed=seed).open()
    for split, shard in writer.pending_shards():
        rows = np.asarray(writer.shard_rows(split, shard))
        arrays = splits[split]
        writer.write_shard(split, shard, rows, arrays["label"][rows], arrays["clean"][rows], arrays["adv"][rows])
    return Path(root)


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MANIFEST", "LogitDatasetWriter", "shard_name", "write_logit_dataset",
           "write_npz_deterministic"]
