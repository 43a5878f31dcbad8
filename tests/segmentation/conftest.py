"""Tiny NIfTI datasets for the segmentation tests, written by ``datamodules.writers.nifti`` (the real format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.writers.nifti import DEMO_LABELS, spacing_affine, synthetic_cases, write_decathlon_dataset

TINY_SHAPE = (24, 24, 12)


@pytest.fixture
def decathlon_root(tmp_path: Path) -> Path:
    """Six synthetic cases of 24x24x12 voxels (1 x 1 x 2 mm) in the Decathlon layout, one unlabelled test image."""
    cases = synthetic_cases(7, TINY_SHAPE, seed=3)
    tests = [(cases[-1][0], cases[-1][1])]
    return write_decathlon_dataset(tmp_path / "Task", cases[:6], DEMO_LABELS, spacing_affine((1, 1, 2)), tests)
