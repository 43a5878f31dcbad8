"""Each bad input gives one clear error (or a warning) naming the file(s)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.volumes import VolumeDataModule
from datamodules.writers.corruption import write_garbage
from datamodules.writers.nifti import spacing_affine, write_nifti
from visionsuite.errors import DatasetError


def _load_all(root: Path) -> None:
    data = VolumeDataModule(str(root), num_classes=3, val_fraction=0.0, test_fraction=0.0)
    data.source("train").load_all()


def test_image_and_label_of_different_shapes(decathlon_root: Path) -> None:
    label = decathlon_root / "labelsTr" / "synthetic_000.nii.gz"
    write_nifti(label, np.zeros((24, 24, 10), dtype=np.uint8), spacing_affine((1, 1, 2)))
    with pytest.raises(DatasetError, match="shape") as error:
        _load_all(decathlon_root)
    assert "imagesTr/synthetic_000.nii.gz" in str(error.value) and "labelsTr/synthetic_000.nii.gz" in str(error.value)


def test_image_and_label_of_different_affines(decathlon_root: Path) -> None:
    label = decathlon_root / "labelsTr" / "synthetic_001.nii.gz"
    write_nifti(label, np.zeros((24, 24, 12), dtype=np.uint8), spacing_affine((1, 1, 3)))
    with pytest.raises(DatasetError, match="different affines") as error:
        _load_all(decathlon_root)
    assert "imagesTr/synthetic_001.nii.gz" in str(error.value) and "labelsTr/synthetic_001.nii.gz" in str(error.value)


def test_label_classes_absent_from_dataset_json(decathlon_root: Path) -> None:
    label = np.zeros((24, 24, 12), dtype=np.uint8)
    label[3:5, 3:5, 3:5] = 7
    write_nifti(decathlon_root / "labelsTr" / "synthetic_002.nii.gz", label, spacing_affine((1, 1, 2)))
    with pytest.raises(DatasetError, match=r"label value\(s\) \[7\]") as error:
        _load_all(decathlon_root)
    assert "synthetic_002.nii.gz" in str(error.value) and "dataset.json" in str(error.value)


def test_a_volume_thinner_than_the_slice_stack_is_padded_with_a_warning(decathlon_root: Path) -> None:
    thin = np.zeros((24, 24, 2), dtype=np.int16)
    label = np.zeros((24, 24, 2), dtype=np.uint8)
    label[10:12, 10:12, :] = 1
    write_nifti(decathlon_root / "imagesTr" / "synthetic_003.nii.gz", thin, spacing_affine((1, 1, 2)))
    write_nifti(decathlon_root / "labelsTr" / "synthetic_003.nii.gz", label, spacing_affine((1, 1, 2)))
    data = VolumeDataModule(str(decathlon_root), num_classes=3, context_slices=2, val_fraction=0.0,
                            test_fraction=0.0, crop_size=(8, 8), samples_per_epoch=40, batch_size=40)
    with pytest.warns(UserWarning, match="synthetic_003.nii.gz is 2 voxel"):
        data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (40, 5, 8, 8)  # stacks of 5 slices, edge slices repeated


def test_a_file_that_is_not_nifti(decathlon_root: Path) -> None:
    write_garbage(decathlon_root / "imagesTr" / "synthetic_004.nii.gz")
    with pytest.raises(DatasetError, match="is not a valid NIfTI file") as error:
        _load_all(decathlon_root)
    assert "imagesTr/synthetic_004.nii.gz" in str(error.value)


def test_dataset_json_listing_missing_files(decathlon_root: Path) -> None:
    description = json.loads((decathlon_root / "dataset.json").read_text())
    description["training"].append({"image": "./imagesTr/ghost.nii.gz", "label": "./labelsTr/ghost.nii.gz"})
    (decathlon_root / "dataset.json").write_text(json.dumps(description))
    data = VolumeDataModule(str(decathlon_root), num_classes=3)
    with pytest.raises(DatasetError, match="lists 2 file") as error:
        data.check_data()
    assert "ghost.nii.gz" in str(error.value)
