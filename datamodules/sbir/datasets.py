"""Image lists of the sketch/photo data: each item a file, its class id and its domain (0 sketch, 1 photo)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from visionsuite.errors import DatasetError

UNLABELLED = -1  # class id of user sketches in mode=predict


@dataclass(frozen=True)
class DomainImage:
    path: Path
    class_id: int
    domain: int


def load_rgb(path: Path) -> Image.Image:
    """The image at ``path`` as RGB (sketches are often grayscale PNGs); one clear error when unreadable."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise DatasetError(f"Cannot decode image {path} ({error}): replace or remove the file.") from None


class SketchPhotoDataset(Dataset):
    """Items ``{"image", "label", "domain", "path"}`` of a list of :class:`DomainImage`."""

    def __init__(self, items: Sequence[DomainImage], transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        return {"image": self.transform(load_rgb(item.path)), "label": item.class_id, "domain": item.domain,
                "path": str(item.path)}
