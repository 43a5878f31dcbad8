"""Tiny ImageFolder datasets (``<root>/<split>/<class>/<image>.JPEG``) of real JPEG files, as ImageNet's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def image_folder_class_names(num_classes: int) -> list[str]:
    """The class folder names written by :func:`write_image_folder`: WordNet-like ``n00000000``, ..."""
    return [f"n{index:08d}" for index in range(num_classes)]


def write_image_folder(
    root: str | Path,
    splits: Sequence[str] = ("train", "val"),
    num_classes: int = 3,
    images_per_class: int = 4,
    image_size: int = 32,
    extension: str = ".JPEG",
    seed: int = 0,
) -> Path:
    """Write ``<root>/<split>/<class>/<class>_<k>.JPEG`` RGB JPEG files, deterministic given ``seed``.

    Each class has its own colour (hue spread over the colour wheel) and a bright square whose corner
    depends on the class, plus noise, so the classes are learnable.

    Args:
        root: The data directory (``data.data_dir``); created if needed.
        splits: Split folders to write (e.g. ``("train", "val")`` for ImageNet's layout).
        num_classes: Number of class folders per split.
        images_per_class: Images per class folder.
        image_size: Side of the square images in pixels.
        extension: File extension (ImageNet uses ``.JPEG``); the format is always JPEG.
        seed: Seed of the noise.

    Returns:
        ``root`` as a :class:`~pathlib.Path` (the directory to pass as ``data.data_dir``).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = image_folder_class_names(num_classes)
    half = max(image_size // 2, 1)
    for split in splits:
        for label, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            hue = 2 * np.pi * label / max(num_classes, 1)
            colour = 127 + 100 * np.cos(hue + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]))
            corner_y, corner_x = (label % 2) * (image_size - half), ((label // 2) % 2) * (image_size - half)
            for index in range(images_per_class):
                image = np.broadcast_to(colour, (image_size, image_size, 3)).copy()
                image[corner_y : corner_y + half, corner_x : corner_x + half] = 240
                image += rng.normal(0.0, 10.0, size=image.shape)
                pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}_{index}{extension}", format="JPEG")
    return root
