"""Market-1501 / DukeMTMC-reID DataModule: SCT or full training set, re-ID batch samplers, query + gallery.

Loaders (MCNL, arXiv:1909.10848 Sec. 4.1):

* train: the SCT split (:mod:`datamodules.reid.sct`) or the full ``bounding_box_train``, minus the
  identities held out for validation, batched by :class:`CameraAwareBatchSampler` (MCNL) or
  :class:`IdentityBatchSampler` (P x K, batch-hard triplet);
* val: ``val_identities`` training identities held out (0: no validation, the paper's protocol, which reports
  the final model). Queries are one image of each held-out identity, the gallery their other images. Under
  SCT all those images come from one camera, so queries get a camera of their own (-1) and the standard
  protocol (drop same identity + same camera) keeps their same-camera matches: a same-camera retrieval
  score, the only one the SCT training data allows without touching the test set;
* test / predict: ``query/`` then ``bounding_box_test/`` in one loader (queries first), junk dropped,
  distractors kept. ``predict_queries`` narrows the queries of ``mode=predict`` to the named files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from datamodules.reid.datasets import ReIDImageDataset, eval_transform, train_transform
from datamodules.reid.layout import (
    GALLERY_FOLDER,
    QUERY_FOLDER,
    TRAIN_FOLDER,
    ReIDRecord,
    check_dataset_name,
    read_folder,
)
from datamodules.reid.samplers import CameraAwareBatchSampler, IdentityBatchSampler
from datamodules.reid.sct import derive_split, official_list_path, split_from_list
from datamodules.sampling import EpochSeededDataLoader
from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError, DatasetError

TRAINING_SPLITS = ("sct", "full")
SAMPLERS = ("camera_aware", "identity")
VALIDATION_QUERY_CAMERA = -1


class ReIDDataModule(SuiteDataModule):
    """Re-ID data in the Market-1501 / DukeMTMC-reID layout (see the module docstring).

    Args:
        data_dir: the dataset folder (holding ``bounding_box_train/``, ``query/``, ``bounding_box_test/``).
        dataset: ``market1501`` or ``dukemtmc`` (file-name layout).
        training_split: ``sct`` (one camera per identity) or ``full``.
        sct_list: an SCT list file; default the official ``market_sct.txt`` / ``duke_sct.txt`` in ``data_dir``
            when present, else the derived split.
        sct_seed: seed of the derived SCT split.
        sampler: ``camera_aware`` (MCNL) or ``identity`` (P x K).
        batch_size: training images per batch (per device); a multiple of ``images_per_identity``.
        images_per_identity: K.
        height, width: network input size (256 x 128 in the paper).
        translation_padding: pixels of random translation.
        val_identities: training identities held out for validation (0: none).
        eval_batch_size, num_workers, pin_memory: loader settings.
        seed: seed of the samplers (epoch ``e`` uses ``(seed, e)``) and of the held-out identities.
        predict_queries: file names in ``query/`` ranked by ``mode=predict`` (default: every query).
    """

    def __init__(self, data_dir: str, dataset: str = "market1501", training_split: str = "sct",
                 sct_list: str | None = None, sct_seed: int = 0, sampler: str = "camera_aware",
                 batch_size: int = 240, images_per_identity: int = 8, height: int = 256, width: int = 128,
                 translation_padding: int = 10, val_identities: int = 0, eval_batch_size: int = 128,
                 num_workers: int = 4, pin_memory: bool = False, seed: int = 0,
                 predict_queries: Sequence[str] | None = None) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        self.dataset = check_dataset_name(dataset)
        if training_split not in TRAINING_SPLITS:
            raise ConfigError(f"data.training_split={training_split!r}: use one of {', '.join(TRAINING_SPLITS)}.")
        if sampler not in SAMPLERS:
            raise ConfigError(f"data.sampler={sampler!r}: use one of {', '.join(SAMPLERS)}.")
        if int(batch_size) % int(images_per_identity):
            raise ConfigError(f"data.batch_size={batch_size} is not divisible by data.images_per_identity="
                              f"{images_per_identity}: a batch holds whole identities (P x K).")
        self.training_split, self.sct_list, self.sct_seed = training_split, sct_list, int(sct_seed)
        self.sampler, self.batch_size, self.images_per_identity = sampler, int(batch_size), int(images_per_identity)
        self.height, self.width, self.translation_padding = int(height), int(width), int(translation_padding)
        self.val_identities, self.eval_batch_size = int(val_identities), int(eval_batch_size)
        self.num_workers, self.pin_memory, self.seed = int(num_workers), bool(pin_memory), int(seed)
        self.predict_queries = None if predict_queries is None else [str(name) for name in predict_queries]
        self.train_records: list[ReIDRecord] | None = None
        self.datasets: dict[str, ReIDImageDataset] = {}

    # ------------------------------------------------------------------------------ reading
    def check_data(self) -> None:
        """Fail early (one message) on a missing folder, malformed file names or a bad SCT list."""
        self._read_training()
        for folder in (QUERY_FOLDER, GALLERY_FOLDER):
            read_folder(self.data_dir / folder, self.dataset)

    def _read_training(self) -> list[ReIDRecord]:
        if self.train_records is None:
            records = read_folder(self.data_dir / TRAIN_FOLDER, self.dataset, keep_distractors=False)
            if self.training_split == "sct":
                list_path = official_list_path(self.data_dir, self.dataset, self.sct_list)
                records = split_from_list(records, list_path) if list_path else derive_split(records, self.sct_seed)
            self.train_records = records
        return self.train_records

    def _held_out_identities(self, records: list[ReIDRecord]) -> set[int]:
        identities = sorted({record.identity for record in records})
        if self.val_identities <= 0:
            return set()
        if self.val_identities >= len(identities):
            raise ConfigError(f"data.val_identities={self.val_identities} but the training set has "
                              f"{len(identities)} identities; hold out fewer.")
        chosen = np.random.default_rng([self.seed, 1]).choice(len(identities), self.val_identities, replace=False)
        return {identities[int(position)] for position in chosen}

    # ------------------------------------------------------------------------------ datasets
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        evaluation = eval_transform(self.height, self.width)
        records = self._read_training()
        held_out = self._held_out_identities(records)
        training = [record for record in records if record.identity not in held_out]
        self.datasets["train"] = ReIDImageDataset(
            training, train_transform(self.height, self.width, self.translation_padding))
        if held_out:
            queries, gallery, seen = [], [], set()
            for record in records:
                if record.identity not in held_out:
                    continue
                (gallery if record.identity in seen else queries).append(record)
                seen.add(record.identity)
            override = VALIDATION_QUERY_CAMERA if self.training_split == "sct" else None
            self.datasets["val"] = ReIDImageDataset(queries + gallery, evaluation, len(queries), override)
        queries = read_folder(self.data_dir / QUERY_FOLDER, self.dataset)
        gallery = read_folder(self.data_dir / GALLERY_FOLDER, self.dataset)
        self.datasets["test"] = ReIDImageDataset(queries + gallery, evaluation, len(queries))
        self.datasets["predict"] = ReIDImageDataset(self._chosen_queries(queries) + gallery, evaluation,
                                                    len(self._chosen_queries(queries)))

    def _chosen_queries(self, queries: list[ReIDRecord]) -> list[ReIDRecord]:
        if self.predict_queries is None:
            return queries
        by_name = {record.path.name: record for record in queries}
        missing = [name for name in self.predict_queries if Path(name).name not in by_name]
        if missing:
            raise DatasetError(f"data.predict_queries names files not in {self.data_dir / QUERY_FOLDER}: "
                               f"{', '.join(missing)}.")
        return [by_name[Path(name).name] for name in self.predict_queries]

    def eval_dataset(self, stage: str) -> ReIDImageDataset:
        """The evaluation dataset of ``stage`` (``val``, ``test`` or ``predict``): queries first, then gallery."""
        self.setup(stage)
        return self.datasets[stage]

    @property
    def train_dataset(self) -> ReIDImageDataset:
        self.setup("fit")
        return self.datasets["train"]

    # ------------------------------------------------------------------------------ loaders
    def batch_sampler(self) -> CameraAwareBatchSampler | IdentityBatchSampler:
        """The training batch sampler of ``data.sampler`` (rank and world size from the trainer when attached)."""
        records = self.train_dataset.records
        identities = [record.identity for record in records]
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (None, None)
        if self.sampler == "camera_aware":
            return CameraAwareBatchSampler(identities, [record.camera for record in records], self.batch_size,
                                           self.images_per_identity, self.seed, rank, world_size)
        return IdentityBatchSampler(identities, self.batch_size, self.images_per_identity, self.seed, rank, world_size)

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is not None and trainer.world_size > 1 and trainer._accelerator_connector.use_distributed_sampler:
            raise ConfigError("The re-ID batch samplers split batches across ranks themselves: set "
                              "trainer.use_distributed_sampler=false (the re-ID experiments do).")
        return EpochSeededDataLoader(self.train_dataset, batch_sampler=self.batch_sampler(),
                                     num_workers=self.num_workers, pin_memory=self.pin_memory,
                                     persistent_workers=self.num_workers > 0, seed=self.seed,
                                     epoch_source=self._current_epoch)

    def _current_epoch(self) -> int:
        return int(self.trainer.current_epoch) if self.trainer is not None else 0

    def _eval_loader(self, stage: str) -> DataLoader:
        return DataLoader(self.eval_dataset(stage), batch_size=self.eval_batch_size, shuffle=False,
                          num_workers=self.num_workers, pin_memory=self.pin_memory)

    @property
    def has_validation_split(self) -> bool:
        """False with ``val_identities=0`` (the paper's protocol): the run keeps no best-by-validation checkpoint."""
        return self.val_identities > 0

    def val_dataloader(self) -> DataLoader | list:
        self.setup("validate")
        return self._eval_loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("predict")

    def state_summary(self) -> dict[str, Any]:
        """Image and identity counts of every split (what the docs and logs quote)."""
        self.setup()
        summary = {}
        for name, dataset in self.datasets.items():
            summary[name] = {"images": len(dataset), "identities": len({r.identity for r in dataset.records}),
                             "queries": dataset.query_count}
        return summary
