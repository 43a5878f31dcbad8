"""The volumetric DataModule: NIfTI cases (Decathlon or pairs layout), patient-level splits, cached volumes.

Training batches are random slice stacks or 3D patches (``datamodules.volumes.samples``); validation and test
batches are whole cases, one at a time, that the module segments slice by slice; ``predict_dir`` is a folder of
NIfTI images to segment with ``mode=predict``. See ``docs/thickened2d.md`` for the layouts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from datamodules.volumes.cases import CACHE_DTYPES, CaseSource, PreprocessSettings
from datamodules.volumes.layout import (
    CaseFiles,
    case_id_of,
    check_layout,
    read_decathlon,
    read_pairs,
    split_cases,
)
from datamodules.volumes.nifti_io import is_nifti
from datamodules.volumes.preprocessing import check_window
from datamodules.volumes.samples import (
    EpochOffsetSampler,
    SampleSettings,
    VolumeSampleDataset,
    WholeVolumeDataset,
    single_item,
)
from visionsuite.datamodule import SuiteDataModule
from visionsuite.errors import ConfigError, DatasetError

log = logging.getLogger(__name__)


class VolumeDataModule(SuiteDataModule):
    """NIfTI segmentation data for 2D slice-stack and 3D networks.

    Args:
        data_dir: Dataset root (``dataset.json`` + ``imagesTr/`` + ``labelsTr/``, or the pairs folders).
        layout: ``decathlon`` or ``pairs``.
        num_classes: Classes including background; checked against ``dataset.json`` (decathlon) or used with
            ``class_names`` (pairs).
        class_names: Class names in index order (pairs layout; ignored for decathlon, which names them).
        images_dir, labels_dir: Folder names of the pairs layout.
        window: HU window ``[low, high]`` clipped before normalising (null: none).
        normalisation: ``minmax`` (window to [0, 1]), ``zscore`` or ``none``.
        spacing: Target voxel spacing in mm ``[x, y, z]`` (null: keep each file's grid).
        axes: Array axes along which slices are taken (training samples and inference; several: fused).
        context_slices: k: a sample holds 2k+1 neighbouring slices.
        sample_kind: ``stack`` (2D networks) or ``patch`` (3D networks).
        crop_size: In-plane size of training stacks; patch_size: size of 3D training patches.
        foreground_probability: Share of samples centred on a foreground voxel.
        samples_per_epoch: Training samples per epoch.
        val_fraction, test_fraction, split_seed: Patient-level split.
        cache: Keep preprocessed volumes in memory (else re-read the NIfTI files for every sample).
        cache_dtype: ``float32`` | ``float16`` | ``bfloat16`` for cached images (halves memory of big datasets).
        max_foreground_points: Foreground voxels remembered per class and case for biased sampling.
        predict_dir: Folder of NIfTI images for ``mode=predict``.
        batch_size, num_workers, pin_memory, seed: Loader settings.
    """

    def __init__(self, data_dir: str, layout: str = "decathlon", num_classes: int | None = None,
                 class_names: Sequence[str] | None = None, images_dir: str = "images", labels_dir: str = "labels",
                 window: Sequence[float] | None = (-100.0, 240.0), normalisation: str = "minmax",
                 spacing: Sequence[float] | None = None, axes: Sequence[int] = (2,), context_slices: int = 2,
                 sample_kind: str = "stack", crop_size: Sequence[int] = (96, 96),
                 patch_size: Sequence[int] = (64, 64, 32), foreground_probability: float = 0.7,
                 samples_per_epoch: int = 1000, val_fraction: float = 0.2, test_fraction: float = 0.2,
                 split_seed: int = 0, cache: bool = True, cache_dtype: str = "float32",
                 max_foreground_points: int = 20000, predict_dir: str | None = None, batch_size: int = 8,
                 num_workers: int = 0, pin_memory: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        self.layout = check_layout(layout)
        if cache_dtype not in CACHE_DTYPES:
            raise ConfigError(f"data.cache_dtype={cache_dtype!r}: use one of {', '.join(CACHE_DTYPES)}.")
        if spacing is not None and (len(spacing) != 3 or min(spacing) <= 0):
            raise ConfigError(f"data.spacing={list(spacing)}: give three positive values in mm, or null.")
        self.sample_settings = SampleSettings(sample_kind, int(context_slices), tuple(int(a) for a in axes),
                                              tuple(int(v) for v in crop_size), tuple(int(v) for v in patch_size),
                                              float(foreground_probability))
        self.preprocess = PreprocessSettings(check_window(window), normalisation,
                                             None if spacing is None else tuple(float(v) for v in spacing),
                                             cache_dtype, int(max_foreground_points),
                                             self.sample_settings.stack_depth if sample_kind == "stack" else 1)
        self.expected_classes = num_classes
        self.configured_class_names = None if class_names is None else [str(n) for n in class_names]
        self.images_dir, self.labels_dir = images_dir, labels_dir
        self.samples_per_epoch = int(samples_per_epoch)
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, int(split_seed)
        self.cache = bool(cache)
        self.predict_dir = predict_dir
        self.batch_size, self.num_workers, self.pin_memory, self.seed = batch_size, num_workers, pin_memory, seed
        self._class_names: list[str] | None = None
        self._splits: dict[str, list[CaseFiles]] | None = None
        self.sources: dict[str, CaseSource] = {}

    # ------------------------------------------------------------------------------------ dataset description
    def _describe(self) -> tuple[list[str], list[CaseFiles]]:
        if not self.data_dir.is_dir():
            raise DatasetError(f"data.data_dir={self.data_dir} does not exist: point it at the dataset folder "
                               f"({'dataset.json, imagesTr/, labelsTr/' if self.layout == 'decathlon' else 'images/, labels/'}).")
        if self.layout == "decathlon":
            names, cases = read_decathlon(self.data_dir)
            if self.expected_classes is not None and len(names) != self.expected_classes:
                raise ConfigError(f"data.num_classes={self.expected_classes} but {self.data_dir / 'dataset.json'} "
                                  f"declares {len(names)} labels {names}; set data.num_classes={len(names)}.")
            return names, cases
        cases = read_pairs(self.data_dir, self.images_dir, self.labels_dir)
        names = self.configured_class_names
        if names is None:
            if self.expected_classes is None:
                raise ConfigError("The pairs layout needs data.class_names (or data.num_classes).")
            names = ["background", *[f"class_{i}" for i in range(1, self.expected_classes)]]
        if self.expected_classes is not None and len(names) != self.expected_classes:
            raise ConfigError(f"data.class_names has {len(names)} names but data.num_classes={self.expected_classes}.")
        return names, cases

    def check_data(self) -> None:
        """Fail early on a missing folder, an unreadable dataset.json or listed files that do not exist."""
        names, cases = self._describe()
        self._class_names = names
        self._splits = split_cases(cases, self.val_fraction, self.test_fraction, self.split_seed)

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self.check_data()
        return list(self._class_names or [])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> list[CaseFiles]:
        """The cases of ``train`` / ``val`` / ``test``."""
        if self._splits is None:
            self.check_data()
        return list((self._splits or {})[name])

    def _classes_source(self) -> str:
        return str(self.data_dir / "dataset.json") if self.layout == "decathlon" else "data.class_names"

    def source(self, name: str) -> CaseSource:
        """The (cached) cases of split ``name``."""
        if name not in self.sources:
            self.sources[name] = CaseSource(self.split(name), self.preprocess, self.class_names,
                                            self._classes_source(), cache=self.cache)
        return self.sources[name]

    # ---------------------------------------------------------------------------------------------- loaders
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            return
        for name in ("train", "val") if stage in ("fit", None) else ("test",) if stage == "test" else ("val",):
            source = self.source(name)
            if self.cache and self.num_workers == 0:
                source.load_all()  # surface bad files now; worker processes would each load their own copy

    def train_dataloader(self) -> DataLoader:
        dataset = VolumeSampleDataset(self.source("train"), self.sample_settings, self.samples_per_epoch, self.seed)
        return DataLoader(dataset, batch_size=self.batch_size, sampler=EpochOffsetSampler(len(dataset)),
                          num_workers=self.num_workers, pin_memory=self.pin_memory, drop_last=True,
                          persistent_workers=self.num_workers > 0)

    def _whole_volumes(self, source: CaseSource) -> DataLoader:
        return DataLoader(WholeVolumeDataset(source), batch_size=1, shuffle=False, collate_fn=single_item,
                          num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return self._whole_volumes(self.source("val"))

    def test_dataloader(self) -> DataLoader:
        return self._whole_volumes(self.source("test"))

    #: ``mode=predict`` segments the volumes of ``data.predict_dir``: the training dataset need not be present.
    predicts_from_own_inputs = True

    def check_predict_data(self) -> None:
        """What ``mode=predict`` reads: only ``data.predict_dir`` (the training dataset need not be present)."""
        self._predict_files()

    def _predict_files(self) -> list[CaseFiles]:
        if not self.predict_dir:
            raise ConfigError("mode=predict needs data.predict_dir=<folder of .nii/.nii.gz images>.")
        folder = Path(self.predict_dir)
        if not folder.is_dir():
            raise DatasetError(f"data.predict_dir={folder} is not a folder.")
        files = [CaseFiles(case_id_of(p), p, None) for p in sorted(folder.iterdir()) if is_nifti(p)]
        if not files:
            raise DatasetError(f"data.predict_dir={folder} holds no .nii/.nii.gz file.")
        return files

    def predict_dataloader(self) -> DataLoader:
        source = CaseSource(self._predict_files(), self.preprocess, None, "", cache=False)
        return self._whole_volumes(source)

    def describe(self) -> dict[str, Any]:
        """Case counts per split (logged at setup)."""
        return {name: len(self.split(name)) for name in ("train", "val", "test")}
