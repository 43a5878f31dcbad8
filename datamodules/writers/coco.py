"""Tiny detection datasets in the real COCO layout and format, for tests and the embedded demo.

``<root>/annotations/instances_<split>.json`` (``images``, ``annotations``, ``categories``, ``info``,
``licenses``) and ``<root>/<split>/<file_name>`` PNG/JPEG images. Boxes are COCO ``[x, y, width, height]`` in
pixels; ``area`` is the box area (no masks), ``iscrowd`` 0, ``segmentation`` the box as a polygon.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from visionsuite.io import atomic_write_text

#: Category ids of :func:`write_tiny_coco` by default: non-contiguous, as COCO's own (1..90 with gaps).
DEFAULT_CATEGORY_IDS = (1, 3, 7)


def coco_annotation(
    annotation_id: int, image_id: int, category_id: int, box_xywh: Sequence[float]
) -> dict[str, Any]:
    """One COCO instance annotation of a box (its segmentation is the box polygon)."""
    x, y, width, height = (float(value) for value in box_xywh)
    return {
        "id": int(annotation_id),
        "image_id": int(image_id),
        "category_id": int(category_id),
        "bbox": [x, y, width, height],
        "area": max(width, 0.0) * max(height, 0.0),
        "iscrowd": 0,
        "segmentation": [[x, y, x + width, y, x + width, y + height, x, y + height]],
    }


def write_coco_split(
    root: str | Path,
    split: str,
    images: Sequence[np.ndarray],
    objects: Sequence[Sequence[tuple[int, Sequence[float]]]],
    categories: Sequence[tuple[int, str]],
    extension: str = ".png",
    first_image_id: int = 1,
) -> Path:
    """Write one split: images as files and ``instances_<split>.json``.

    Args:
        root: Dataset root (``data.data_dir``).
        split: Split name (``train2017``, ``val``...).
        images: ``(H, W, 3)`` uint8 arrays.
        objects: Per image, ``(category_id, [x, y, width, height])`` pairs.
        categories: ``(id, name)`` pairs.
        extension: ``.png`` or ``.jpg``.
        first_image_id: Id of the first image (ids increase by one).

    Returns:
        The annotation file path.
    """
    root = Path(root)
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    image_entries, annotations = [], []
    for position, (pixels, image_objects) in enumerate(zip(images, objects, strict=True)):
        image_id = first_image_id + position
        file_name = f"{image_id:012d}{extension}"
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(folder / file_name)
        image_entries.append(
            {
                "id": image_id,
                "file_name": file_name,
                "height": int(pixels.shape[0]),
                "width": int(pixels.shape[1]),
                "license": 1,
            }
        )
        for category_id, box in image_objects:
            annotations.append(coco_annotation(len(annotations) + 1, image_id, category_id, box))
    payload = {
        "info": {"description": f"visionsuite generated dataset ({split})", "version": "1.0"},
        "licenses": [{"id": 1, "name": "generated", "url": ""}],
        "images": image_entries,
        "annotations": annotations,
        "categories": [{"id": int(cid), "name": name, "supercategory": "shape"} for cid, name in categories],
    }
    path = root / "annotations" / f"instances_{split}.json"
    atomic_write_text(path, json.dumps(payload))
    return path


def write_tiny_coco(
    root: str | Path,
    splits: Sequence[str] = ("train", "val"),
    num_images: int = 4,
    image_size: tuple[int, int] = (64, 80),
    category_ids: Sequence[int] = DEFAULT_CATEGORY_IDS,
    objects_per_image: int = 2,
    extension: str = ".png",
    seed: int = 0,
) -> Path:
    """A tiny COCO dataset of filled rectangles (one colour per category) on grey, deterministic given ``seed``.

    Returns ``root`` (the directory to pass as ``data.data_dir``).
    """
    rng = np.random.default_rng(seed)
    height, width = image_size
    categories = [(int(cid), f"category_{cid}") for cid in category_ids]
    for split in splits:
        images, objects = [], []
        for _ in range(num_images):
            canvas = Image.new("RGB", (width, height), (128, 128, 128))
            draw = ImageDraw.Draw(canvas)
            image_objects = []
            for _ in range(objects_per_image):
                index = int(rng.integers(len(categories)))
                box_w, box_h = int(rng.integers(8, width // 2)), int(rng.integers(8, height // 2))
                x, y = int(rng.integers(0, width - box_w)), int(rng.integers(0, height - box_h))
                hue = 2 * np.pi * index / max(len(categories), 1)
                colour = tuple(
                    int(127 + 120 * np.cos(hue + shift)) for shift in (0, 2 * np.pi / 3, 4 * np.pi / 3)
                )
                draw.rectangle([x, y, x + box_w - 1, y + box_h - 1], fill=colour)
                image_objects.append((categories[index][0], [x, y, box_w, box_h]))
            images.append(np.asarray(canvas))
            objects.append(image_objects)
        write_coco_split(root, split, images, objects, categories, extension)
    return Path(root)
