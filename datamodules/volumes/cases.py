"""Loaded cases: one patient's preprocessed image, label and where its foreground lies, cached in memory.

:class:`CaseSource` loads a case on request; with ``cache=True`` every case is read and preprocessed once
and kept (an epoch of 2D samples then never re-reads a NIfTI file), with ``cache=False`` each request reads
the files again (what ``benchmarks/volume_loading.py`` compares against).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np
import torch

from datamodules.volumes.layout import CaseFiles
from datamodules.volumes.nifti_io import check_label_classes, check_pair, read_nifti
from datamodules.volumes.preprocessing import resample, resampled_shape, window_and_normalise

log = logging.getLogger(__name__)
CACHE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class PreprocessSettings:
    """How a case is prepared: HU window, normalisation, target spacing (None: keep), cached dtype."""

    window: tuple[float, float] | None = (-100.0, 240.0)
    normalisation: str = "minmax"
    spacing: tuple[float, float, float] | None = None
    cache_dtype: str = "float32"
    max_foreground_points: int = 20000
    min_thickness: int = 1  # the slice stack's depth (2k+1): thinner volumes are padded, with a warning


@dataclass
class VolumeCase:
    """One preprocessed case. ``image`` / ``label`` are on the working grid (resampled when a spacing is set);
    ``original_label`` is on the file's grid, what Dice is measured on."""

    case_id: str
    index: int
    image: torch.Tensor
    label: torch.Tensor | None
    original_label: torch.Tensor | None
    original_shape: tuple[int, int, int]
    affine: np.ndarray
    header: nib.Nifti1Header
    image_path: str = ""
    fill_value: float = 0.0  # the image's minimum: what crops are padded with beyond the volume
    foreground: dict[int, torch.Tensor] = field(default_factory=dict)  # class -> flat voxel indices (subsampled)

    def as_item(self) -> dict[str, Any]:
        """The evaluation / prediction item of this case (one whole volume)."""
        return {"image": self.image.float(), "label": self.original_label, "case_id": self.case_id,
                "case_index": self.index, "original_shape": self.original_shape, "affine": self.affine,
                "header": self.header, "image_path": self.image_path}


def _foreground_points(label: torch.Tensor, limit: int, seed: int) -> dict[int, torch.Tensor]:
    points = {}
    flat = label.reshape(-1)
    generator = torch.Generator().manual_seed(seed)
    for value in torch.unique(flat).tolist():
        if value == 0:
            continue
        indices = torch.nonzero(flat == value).reshape(-1)
        if len(indices) > limit:
            indices = indices[torch.randperm(len(indices), generator=generator)[:limit]]
        points[int(value)] = indices
    return points


def load_case(files: CaseFiles, index: int, settings: PreprocessSettings, class_names: Sequence[str] | None,
              classes_source: str) -> VolumeCase:
    """Read, check and preprocess one case (see :class:`PreprocessSettings`).

    Raises:
        DatasetError: invalid NIfTI, image / label grids that differ, or label values outside ``class_names``.
    """
    image = read_nifti(files.image)
    label = None
    if files.label is not None:
        label = read_nifti(files.label)
        check_pair(image, label)
        if class_names is not None:
            check_label_classes(label, list(class_names), classes_source)
    original_shape = tuple(int(n) for n in image.data.shape)
    voxels = torch.from_numpy(window_and_normalise(image.data, settings.window, settings.normalisation))
    original_label = torch.from_numpy(label.data.astype(np.uint8)) if label is not None else None
    working_label = original_label
    if settings.spacing is not None:
        size = resampled_shape(original_shape, image.spacing, settings.spacing)
        voxels = resample(voxels, size, is_label=False)
        working_label = resample(original_label, size, is_label=True) if original_label is not None else None
    thinnest = min(voxels.shape)
    if thinnest < settings.min_thickness:
        message = (f"{files.image} is {thinnest} voxel(s) thin (shape {tuple(voxels.shape)}), less than the slice "
                   f"stack of {settings.min_thickness}: the missing neighbours are padded with the edge slices.")
        warnings.warn(message, stacklevel=2)
        log.warning(message)
    case = VolumeCase(files.case_id, index, voxels.to(CACHE_DTYPES[settings.cache_dtype]), working_label,
                      original_label, original_shape, image.affine, image.header, str(files.image),
                      float(voxels.min()))
    if working_label is not None:
        case.foreground = _foreground_points(working_label, settings.max_foreground_points, seed=index)
    return case


class CaseSource:
    """The cases of one split, loaded on request; kept in memory after the first load when ``cache`` is true."""

    def __init__(self, cases: Sequence[CaseFiles], settings: PreprocessSettings, class_names: Sequence[str] | None,
                 classes_source: str, cache: bool = True) -> None:
        self.files = list(cases)
        self.settings = settings
        self.class_names = None if class_names is None else list(class_names)
        self.classes_source = classes_source
        self.cache = cache
        self._cached: dict[int, VolumeCase] = {}

    def __len__(self) -> int:
        return len(self.files)

    def case(self, index: int) -> VolumeCase:
        if index in self._cached:
            return self._cached[index]
        case = load_case(self.files[index], index, self.settings, self.class_names, self.classes_source)
        if self.cache:
            self._cached[index] = case
        return case

    def load_all(self) -> None:
        """Fill the cache now (and surface any bad file before training starts)."""
        for index in range(len(self)):
            self.case(index)
