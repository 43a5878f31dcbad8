"""The generated shapes dataset: deterministic, in the COCO format, and guarded against mixed settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from datamodules.shapes import ensure_shapes_dataset, render_shapes_image
from visionsuite.errors import DatasetError


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_settings_same_bytes(tmp_path: Path) -> None:
    settings = {
        "num_train": 5,
        "num_val": 3,
        "image_size": 64,
        "min_size": 8,
        "max_size": 24,
        "max_objects": 3,
        "seed": 1,
    }
    first = ensure_shapes_dataset(tmp_path / "a", **settings)
    second = ensure_shapes_dataset(tmp_path / "b", **settings)
    assert _digest(first) == _digest(second)
    assert (first / "annotations" / "instances_train.json").is_file() and len(
        list((first / "val").iterdir())
    ) == 3
    ensure_shapes_dataset(first, **settings)  # already there: reused
    with pytest.raises(DatasetError, match="other settings"):
        ensure_shapes_dataset(first, **{**settings, "seed": 2})


def test_shapes_fill_their_boxes() -> None:
    image, objects = render_shapes_image(np.random.default_rng(0), image_size=96, max_objects=4)
    assert 1 <= len(objects) <= 4
    covered = np.zeros(image.shape[:2], dtype=bool)
    for _category, (x, y, w, h) in objects:
        covered[int(y) : int(y + h), int(x) : int(x + w)] = True
    background = image[~covered][0]
    assert (image[~covered] == background).all()  # a plain background
    for _category, (x, y, w, h) in objects:
        patch = image[int(y) : int(y + h), int(x) : int(x + w)]
        for edge in (patch[0], patch[-1], patch[:, 0], patch[:, -1]):  # the shape touches all four sides
            assert (edge != background).any()


def test_a_foreign_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(DatasetError, match="not a generated shapes dataset"):
        ensure_shapes_dataset(tmp_path, num_train=1, num_val=1)
