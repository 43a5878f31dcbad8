"""Reading the logit dataset of the logit defense (arXiv:1906.10973), and the defender's DataModule.

The format is described in :mod:`datamodules.writers.logit_dataset`. The defender needs no images (the
paper's point): :class:`LogitDataModule` serves the clean and adversarial logits of the attack phase. Its
training split is the logit dataset's ``train`` split minus a seeded hold-out of ``val_fraction`` that
validates (and selects the checkpoint); ``test`` is only ever tested. For the adaptive white-box attack of
the evaluate phase it can also hand out the test images (pixel space), matched by their stored index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.sampling import epoch_seeded_train_loader
from datamodules.writers.logit_dataset import FORMAT_NAME, MANIFEST, SHARD_ARRAYS, shard_name
from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError, DatasetError


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the logit dataset ``root``; a :class:`DatasetError` naming the path if it is not one."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root} is not a logit dataset: {path} is missing. Make one with the attack phase "
                           "(python run.py experiment=logit_defense_attack_digits) or point to its `logits` folder.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is not readable JSON ({error}); re-run the attack phase.") from error
    if manifest.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is not a {FORMAT_NAME} manifest (format={manifest.get('format')!r}).")
    return manifest


def defender_layout(entry: str, logit_dir: str | None = None, ckpt_path: str | None = None) -> Any:
    """``num_classes`` or ``attack_names`` of the defenders to build, as the files of the run state them.

    The defender checkpoint ``ckpt_path`` (what its defenders were trained on) comes first, then the manifest of the
    logit dataset ``logit_dir`` (one defender per attack it holds). None when neither file says; unreadable files
    are left to the checks that name them. What ``model.net`` of ``conf/model/logit_defender.yaml`` reads through
    ``${call:...}``.
    """
    if entry not in ("num_classes", "attack_names"):
        raise ValueError(f"entry must be num_classes or attack_names, got {entry!r}")
    if ckpt_path and Path(str(ckpt_path)).is_file():
        try:  # memory-mapped: only the pickled structure is read, not the weights
            stored = torch.load(str(ckpt_path), map_location="cpu", mmap=True, weights_only=False)
            value = stored.get("hyper_parameters", {}).get(entry)
        except Exception:  # noqa: BLE001 - a damaged checkpoint is named when the run loads it
            value = None
        if value is not None:
            return value
    if logit_dir and (Path(str(logit_dir)) / MANIFEST).is_file():
        try:
            return read_manifest(str(logit_dir)).get(entry)
        except DatasetError:
            return None
    return None


def read_split(root: str | os.PathLike[str], split: str) -> dict[str, np.ndarray]:
    """All shards of ``split`` concatenated: ``index``, ``label``, ``clean`` (N, C), ``adv`` (N, K, C).

    Raises:
        DatasetError: the split is unknown, a shard is missing (an unfinished attack phase) or corrupt.
    """
    root = Path(root)
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise DatasetError(f"The logit dataset {root} has no split {split!r}; it has: {', '.join(manifest['splits'])}.")
    parts: dict[str, list[np.ndarray]] = {key: [] for key in SHARD_ARRAYS}
    for shard in range(manifest["splits"][split]["num_shards"]):
        path = root / split / shard_name(shard)
        if not path.is_file():
            raise DatasetError(f"{path} is missing: the attack phase that writes {root} did not finish. Resume it "
                               "(python run.py resume=<its run directory>) and it continues at this shard.")
        try:
            with np.load(path, allow_pickle=False) as archive:
                for key in SHARD_ARRAYS:
                    parts[key].append(archive[key])
        except (OSError, ValueError, KeyError) as error:
            raise DatasetError(f"{path} is corrupt ({type(error).__name__}: {error}); delete it and resume the "
                               "attack phase to write it again.") from error
    return {key: np.concatenate(values) for key, values in parts.items()}


def read_logit_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Logits to correct, from a ``.npy`` (N, C) array or a ``.npz`` with ``logits`` (N, C) (and optionally
    ``label`` (N,)). Labels default to -1 (unknown)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data.predict_path={path}: no such file (give a .npy / .npz logit file or a logit "
                           "dataset directory).")
    try:
        if path.suffix == ".npy":
            logits, labels = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as archive:
                if "logits" not in archive:
                    raise DatasetError(f"{path} has no `logits` array (it has: {', '.join(archive.files)}).")
                logits = archive["logits"]
                labels = archive["label"] if "label" in archive else None
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable .npy/.npz logit file ({error}).") from error
    if logits.ndim != 2:
        raise DatasetError(f"{path}: logits must have shape (N, C), got {logits.shape}.")
    labels = np.full(len(logits), -1, dtype=np.int64) if labels is None else labels.astype(np.int64)
    return {"logits": logits.astype(np.float32), "label": labels, "source": np.zeros(len(logits), dtype=np.int64)}


class LogitRecords(Dataset):
    """Rows of a logit split: ``{"clean": (C,), "adv": (K, C), "label": int, "index": int}``.

    ``images``: an optional pixel-space image dataset; ``image`` is then added, taken at the row's ``index``.
    """

    def __init__(self, arrays: dict[str, np.ndarray], rows: np.ndarray | None = None,
                 images: Dataset | None = None) -> None:
        self.clean = torch.from_numpy(arrays["clean"])
        self.adv = torch.from_numpy(arrays["adv"])
        self.label = torch.from_numpy(arrays["label"])
        self.index = torch.from_numpy(arrays["index"])
        self.rows = np.arange(len(self.label)) if rows is None else rows
        self.images = images

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> dict[str, Any]:
        row = int(self.rows[position])
        item = {"clean": self.clean[row], "adv": self.adv[row], "label": self.label[row], "index": self.index[row]}
        if self.images is not None:
            item["image"] = self.images[int(self.index[row])][0]
        return item


class PredictRecords(Dataset):
    """Rows to correct in ``mode=predict``: ``{"logits": (C,), "label": int, "source": int}``."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = {key: torch.from_numpy(value) for key, value in arrays.items()}

    def __len__(self) -> int:
        return len(self.arrays["logits"])

    def __getitem__(self, row: int) -> dict[str, Any]:
        return {key: value[row] for key, value in self.arrays.items()}


class LogitDataModule(SuiteDataModule):
    """The defender's data: logits only (plus the test images when an adaptive attack is evaluated).

    Args:
        logit_dir: A logit dataset directory (the attack phase's ``logits`` artifact).
        batch_size: Training batch size (256 in the paper's code).
        eval_batch_size: Validation / test / predict batch size (defaults to ``batch_size``).
        val_fraction: Fraction of the ``train`` split held out for validation (seeded by ``seed``), in (0, 1).
        seed: Seed of the hold-out and of the training order.
        num_workers: DataLoader worker processes.
        expected_num_classes: The defender's class count; a logit dataset or file with another count is a
            :class:`DatasetError` naming both (set from ``${model.num_classes}``).
        predict_path: What ``mode=predict`` corrects: a ``.npy``/``.npz`` logit file, or a logit dataset
            directory (its ``predict_split``: clean and every attack's logits). None: ``logit_dir``.
        predict_split: The split of a logit dataset that ``mode=predict`` corrects.
        images: An image DataModule (the one the attack phase attacked); with it the test rows carry their
            pixel-space image, for the adaptive white-box attack of the evaluate phase.
    """

    def __init__(self, logit_dir: str | os.PathLike[str] | None = None, batch_size: int = 256,
                 eval_batch_size: int | None = None, val_fraction: float = 0.1, seed: int = 0, num_workers: int = 0,
                 expected_num_classes: int | None = None, predict_path: str | None = None,
                 predict_split: str = "test", images: SuiteDataModule | None = None) -> None:
        super().__init__()
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ConfigError(f"data.batch_size / data.eval_batch_size must be >= 1, got {batch_size} / {eval_batch_size}.")
        if not 0.0 < float(val_fraction) < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1) (the held-out part of the train logits), "
                              f"got {val_fraction!r}.")
        if logit_dir is None and predict_path is None:
            raise ConfigError("data.logit_dir is not set: give the attack phase's logit dataset "
                              "(data.logit_dir=<run dir>/attack/logits) or data.predict_path=<logit file>.")
        self.logit_dir = None if logit_dir is None else Path(logit_dir)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.expected_num_classes = expected_num_classes
        self.predict_path = None if predict_path is None else Path(predict_path)
        self.predict_split = predict_split
        self.images = images
        self.datasets: dict[str, Dataset] = {}

    # --------------------------------------------------------------------------- what the data is
    @property
    def manifest(self) -> dict[str, Any]:
        if self.logit_dir is None:
            raise ConfigError("data.logit_dir is not set (the logit dataset to train or test on).")
        return read_manifest(self.logit_dir)

    @property
    def attack_names(self) -> list[str]:
        return list(self.manifest["attack_names"])

    @property
    def num_classes(self) -> int:
        if self.logit_dir is None:
            return int(self._predict_arrays()["logits"].shape[1])
        return int(self.manifest["num_classes"])

    def check_data(self) -> None:
        """The logit dataset (or predict file) exists and has the defender's class count."""
        source = self.logit_dir if self.logit_dir is not None else self.predict_path
        classes = self.num_classes
        if self.expected_num_classes is not None and classes != int(self.expected_num_classes):
            raise DatasetError(f"{source} holds logits of {classes} classes but the defender has "
                               f"{self.expected_num_classes} (model.net.num_classes); use a logit file of the "
                               "classifier this defender was trained for, or a defender of that class count.")
        if self.predict_path is not None and self.predict_path != self.logit_dir:
            predict_classes = int(self._predict_arrays()["logits"].shape[1])
            if self.expected_num_classes is not None and predict_classes != int(self.expected_num_classes):
                raise DatasetError(f"{self.predict_path} holds logits of {predict_classes} classes but the defender "
                                   f"has {self.expected_num_classes} (model.net.num_classes).")

    # --------------------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        self.check_data()
        if stage in ("fit", "validate", None) and "train" not in self.datasets:
            arrays = read_split(self.logit_dir, "train")
            count = len(arrays["label"])
            held_out = int(round(self.val_fraction * count))
            if not 0 < held_out < count:
                raise DatasetError(f"data.val_fraction={self.val_fraction} holds out {held_out} of the {count} train "
                                   f"logits of {self.logit_dir}; choose a fraction that leaves both parts non-empty.")
            order = torch.randperm(count, generator=torch.Generator().manual_seed(self.seed)).numpy()
            self.datasets["train"] = LogitRecords(arrays, np.sort(order[held_out:]))
            self.datasets["val"] = LogitRecords(arrays, np.sort(order[:held_out]))
        if stage in ("test", None) and "test" not in self.datasets:
            images = None
            if self.images is not None:
                from datamodules.logit_attack_data import pixel_split

                images = pixel_split(self.images, "test")
            self.datasets["test"] = LogitRecords(read_split(self.logit_dir, "test"), images=images)
        if stage == "predict" and "predict" not in self.datasets:
            self.datasets["predict"] = PredictRecords(self._predict_arrays())

    def _predict_arrays(self) -> dict[str, np.ndarray]:
        """Rows to correct: a logit file's, or every (clean / attack) logit of a logit dataset's split.

        ``source`` is 0 for clean logits and ``k + 1`` for the logits under attack ``k`` (manifest order).
        """
        path = self.predict_path if self.predict_path is not None else self.logit_dir
        if path is not None and Path(path).is_dir():
            arrays = read_split(path, self.predict_split)
            count, attacks = arrays["adv"].shape[0], arrays["adv"].shape[1]
            logits = np.concatenate([arrays["clean"], *[arrays["adv"][:, k] for k in range(attacks)]])
            return {"logits": logits, "label": np.tile(arrays["label"], attacks + 1),
                    "source": np.repeat(np.arange(attacks + 1, dtype=np.int64), count)}
        return read_logit_file(path)  # type: ignore[arg-type]

    def predict_sources(self) -> list[str]:
        """Names of the ``source`` codes of the predict rows."""
        path = self.predict_path if self.predict_path is not None else self.logit_dir
        if path is not None and Path(path).is_dir():
            return ["clean", *read_manifest(path)["attack_names"]]
        return [Path(path).name]  # type: ignore[arg-type]

    def train_dataloader(self) -> DataLoader:
        # Order and worker seeds depend only on (seed, epoch), so a resumed defender run is exact.
        return epoch_seeded_train_loader(self, self.datasets["train"], self.seed, batch_size=self.batch_size,
                                         num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["val"], batch_size=self.eval_batch_size, num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["test"], batch_size=self.eval_batch_size, num_workers=self.num_workers)

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["predict"], batch_size=self.eval_batch_size, num_workers=self.num_workers)


__all__ = ["LogitDataModule", "defender_layout", "LogitRecords", "PredictRecords", "read_logit_file", "read_manifest", "read_split"]
