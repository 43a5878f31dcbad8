"""The embedded detection demo: simple shapes on plain backgrounds, generated in the COCO format.

Rectangles, ellipses and triangles (three categories, ids 1-3) of random colour, size (``min_size`` to
``max_size`` pixels a side, aspect ratio 1:2 to 2:1) and position, 1 to ``max_objects`` per image, with
little overlap (IoU < 0.1), on a plain background of another random colour. Everything is drawn from
``numpy.random.default_rng(seed)``, so the same settings always give the same bytes; no download.

The dataset is written once into ``data_dir`` (``${paths.data_dir}/shapes``) with the COCO layout
(``annotations/instances_{train,val}.json``, ``train/``, ``val/``), so the real COCO loader and the COCO
evaluator run on it. ``shapes.json`` there records the settings; a folder written with other settings is
an error (choose another ``data.data_dir`` or delete the folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from datamodules.coco import CocoDataModule
from datamodules.writers.coco import write_coco_split
from datamodules.writers.generated import ensure_generated

SHAPE_CATEGORIES = ((1, "rectangle"), (2, "ellipse"), (3, "triangle"))
STAMP_FILE = "shapes.json"
GENERATOR_VERSION = 1
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_003}


def _box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """IoU of two ``(x, y, w, h)`` boxes."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    for _ in range(100):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - background).sum() > 200:
            break
    return tuple(int(v) for v in colour)


def render_shapes_image(
    rng: np.random.Generator,
    image_size: int = 128,
    min_size: int = 16,
    max_size: int = 56,
    max_objects: int = 4,
) -> tuple[np.ndarray, list[tuple[int, list[float]]]]:
    """One image and its ``(category_id, [x, y, w, h])`` objects; each shape fills exactly its box."""
    background = rng.integers(0, 256, size=3)
    canvas = Image.new("RGB", (image_size, image_size), tuple(int(v) for v in background))
    draw = ImageDraw.Draw(canvas)
    boxes: list[tuple[int, int, int, int]] = []
    objects: list[tuple[int, list[float]]] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            side = float(rng.uniform(min_size, max_size))
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            width = int(np.clip(round(side * np.sqrt(aspect)), min_size // 2, image_size - 2))
            height = int(np.clip(round(side / np.sqrt(aspect)), min_size // 2, image_size - 2))
            x, y = int(rng.integers(0, image_size - width + 1)), int(rng.integers(0, image_size - height + 1))
            box = (x, y, width, height)
            if all(_box_iou(box, other) < 0.1 for other in boxes):
                break
        else:
            continue
        category_id, _name = SHAPE_CATEGORIES[int(rng.integers(len(SHAPE_CATEGORIES)))]
        colour = _contrasting_colour(rng, background)
        right, bottom = x + width - 1, y + height - 1  # inclusive pixel bounds: the box is [x, x + width)
        if category_id == 1:
            draw.rectangle([x, y, right, bottom], fill=colour)
        elif category_id == 2:
            draw.ellipse([x, y, right, bottom], fill=colour)
        else:
            draw.polygon([(x, bottom), (right, bottom), ((x + right) / 2, y)], fill=colour)
        boxes.append(box)
        objects.append((category_id, [float(x), float(y), float(width), float(height)]))
    return np.asarray(canvas), objects


def write_shapes_dataset(
    root: str | Path,
    num_train: int = 2000,
    num_val: int = 200,
    image_size: int = 128,
    min_size: int = 16,
    max_size: int = 56,
    max_objects: int = 4,
    seed: int = 0,
) -> Path:
    """Write the shapes dataset (COCO layout) into ``root`` (created; existing files are overwritten)."""
    root = Path(root)
    for split, count in (("train", num_train), ("val", num_val)):
        rng = np.random.default_rng(seed + SPLIT_SEED_OFFSETS[split])
        rendered = [
            render_shapes_image(rng, image_size, min_size, max_size, max_objects) for _ in range(count)
        ]
        write_coco_split(
            root,
            split,
            [image for image, _ in rendered],
            [objects for _, objects in rendered],
            SHAPE_CATEGORIES,
        )
    return root


def ensure_shapes_dataset(root: str | Path, **settings: Any) -> Path:
    """Generate the dataset into ``root`` unless it is already there with the same settings (atomically)."""
    return ensure_generated(root, lambda folder: write_shapes_dataset(folder, **settings),
                            {"version": GENERATOR_VERSION, **settings}, stamp_file=STAMP_FILE, what="shapes dataset")


class ShapesDataModule(CocoDataModule):
    """:class:`CocoDataModule` on the generated shapes dataset (``train`` / ``val`` splits; test = val).

    Args:
        data_dir: Where the dataset is generated on first use (``${paths.data_dir}/shapes``).
        num_train, num_val, image_size, min_size, max_size, max_objects, generator_seed: Generation settings.
        **kwargs: The :class:`CocoDataModule` settings (augmentation, loaders).
    """

    def __init__(
        self,
        data_dir: str,
        num_train: int = 2000,
        num_val: int = 200,
        image_size: int = 128,
        min_size: int = 16,
        max_size: int = 56,
        max_objects: int = 4,
        generator_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("train_split", "train")
        kwargs.setdefault("val_split", "val")
        kwargs.setdefault("test_split", "val")
        kwargs.setdefault("input_size", image_size)
        kwargs.setdefault("num_workers", 0)
        super().__init__(data_dir, **kwargs)
        self.generation = {
            "num_train": int(num_train),
            "num_val": int(num_val),
            "image_size": int(image_size),
            "min_size": int(min_size),
            "max_size": int(max_size),
            "max_objects": int(max_objects),
            "seed": int(generator_seed),
        }

    def prepare_data(self) -> None:
        ensure_shapes_dataset(self.data_dir, **self.generation)

    def load_categories(self) -> list[dict[str, Any]]:
        if self.categories is None:
            ensure_shapes_dataset(self.data_dir, **self.generation)
        return super().load_categories()
