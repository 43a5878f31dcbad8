"""Finding the cases of a volumetric dataset on disk and splitting them by patient.

Two layouts:

* ``decathlon``: the Medical Segmentation Decathlon's ``dataset.json`` (``labels``, ``training`` with
  ``image``/``label`` paths relative to the root, ``test`` with image paths) and ``imagesTr/``, ``labelsTr/``.
* ``pairs``: ``<root>/<images_dir>/<case>.nii[.gz]`` and ``<root>/<labels_dir>/<case>.nii[.gz]`` with the same
  file names; the class names come from the config.

A case is one patient (one image file); the train / val / test split is drawn over cases, never over slices, so
no patient has slices on two sides (2D networks would otherwise see neighbouring slices of their test cases).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datamodules.volumes.nifti_io import is_nifti
from visionsuite.errors import ConfigError, DatasetError

LAYOUTS = ("decathlon", "pairs")
DATASET_JSON = "dataset.json"


@dataclass(frozen=True)
class CaseFiles:
    """One patient: its id (the file name without ``.nii[.gz]``), image file and label file (None if unlabelled)."""

    case_id: str
    image: Path
    label: Path | None


def case_id_of(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.endswith(".nii.gz") else name[: -len(".nii")]


def read_decathlon(root: Path) -> tuple[list[str], list[CaseFiles]]:
    """Class names (index order) and the training cases listed in ``root/dataset.json``.

    Raises:
        DatasetError: no ``dataset.json``, unreadable JSON, missing keys, or listed files that do not exist.
    """
    path = root / DATASET_JSON
    if not path.is_file():
        raise DatasetError(f"{path} not found: a Decathlon dataset needs dataset.json, imagesTr/ and labelsTr/ "
                           "(download the task from medicaldecathlon.com and set data.data_dir to its folder).")
    try:
        description = json.loads(path.read_text())
        labels = {int(key): str(name) for key, name in description["labels"].items()}
        entries = description["training"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: not a Decathlon dataset.json ({type(error).__name__}: {error}); it needs "
                           "`labels` ({\"0\": \"background\", ...}) and `training` ([{image, label}, ...]).") from None
    if sorted(labels) != list(range(len(labels))):
        raise DatasetError(f"{path}: `labels` must be numbered 0..N-1, got {sorted(labels)}.")
    cases = [CaseFiles(case_id_of(Path(e["image"])), (root / e["image"]).resolve(), (root / e["label"]).resolve())
             for e in entries]
    missing = [str(p) for case in cases for p in (case.image, case.label) if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(f"{path} lists {len(missing)} file(s) that do not exist: {shown}. Re-extract the "
                           "dataset or remove those entries from `training`.")
    return [labels[i] for i in range(len(labels))], cases


def read_pairs(root: Path, images_dir: str, labels_dir: str) -> list[CaseFiles]:
    """Cases of the pairs layout (every image needs a label of the same name).

    Raises:
        DatasetError: missing folders, no images, or an image without a label.
    """
    images, labels = root / images_dir, root / labels_dir
    for folder in (images, labels):
        if not folder.is_dir():
            raise DatasetError(f"{folder} not found: the pairs layout needs {images_dir}/ and {labels_dir}/ under "
                               f"{root} with one label per image of the same file name.")
    image_files = sorted(p for p in images.iterdir() if is_nifti(p))
    if not image_files:
        raise DatasetError(f"{images} holds no .nii/.nii.gz file.")
    unmatched = [p.name for p in image_files if not (labels / p.name).is_file()]
    if unmatched:
        raise DatasetError(f"{labels} has no label for {len(unmatched)} image(s) of {images}: "
                           f"{', '.join(unmatched[:5])}; label files must have the image's file name.")
    return [CaseFiles(case_id_of(p), p, labels / p.name) for p in image_files]


def split_cases(cases: list[CaseFiles], val_fraction: float, test_fraction: float,
                seed: int) -> dict[str, list[CaseFiles]]:
    """Patient-level train / val / test split: a seeded permutation of the cases, cut by the fractions.

    Each of val and test gets at least one case when its fraction is positive; train keeps at least one.

    Raises:
        ConfigError: fractions outside [0, 1) or summing to 1 or more.
        DatasetError: too few cases for the requested splits.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in "
                          "[0, 1) and sum to less than 1.")
    order = np.random.default_rng(seed).permutation(len(cases)).tolist()
    shuffled = [cases[i] for i in order]
    n_val = max(int(round(val_fraction * len(cases))), 1 if val_fraction > 0 else 0)
    n_test = max(int(round(test_fraction * len(cases))), 1 if test_fraction > 0 else 0)
    if n_val + n_test >= len(cases):
        raise DatasetError(f"{len(cases)} case(s) cannot be split into train, {n_val} val and {n_test} test "
                           "case(s); add cases or lower data.val_fraction / data.test_fraction.")
    val, test = shuffled[:n_val], shuffled[n_val:n_val + n_test]
    train = shuffled[n_val + n_test:]
    key = lambda case: case.case_id  # noqa: E731
    return {"train": sorted(train, key=key), "val": sorted(val, key=key), "test": sorted(test, key=key)}


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ConfigError(f"data.layout={layout!r}: use one of {', '.join(LAYOUTS)}.")
    return layout
