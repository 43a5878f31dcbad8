"""Image datasets over re-ID records, and the standard re-ID transforms (MCNL, arXiv:1909.10848 Sec. 4.1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

from datamodules.reid.layout import ReIDRecord
from datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD
from visionsuite.errors import DatasetError

Transform = Callable[[Image.Image], torch.Tensor]


def train_transform(height: int, width: int, padding: int = 10, flip_probability: float = 0.5) -> Transform:
    """Resize to ``height x width``, random translation (pad ``padding`` then random crop back), flip, normalise.

    MCNL trains on 256x128 crops with random translation and horizontal flip (Sec. 4.1); the 10-pixel
    padding of the translation is the usual re-ID value (the amount is not given in the paper; not yet verified
    against the official code).
    """
    return T.Compose([
        T.Resize((height, width)),
        T.RandomHorizontalFlip(flip_probability),
        T.Pad(padding),
        T.RandomCrop((height, width)),
        T.ToTensor(),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def eval_transform(height: int, width: int) -> Transform:
    """Resize to ``height x width`` and normalise (test-time flipping is done by the model)."""
    return T.Compose([T.Resize((height, width)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class ReIDImageDataset(Dataset):
    """Records as ``{"image", "identity", "camera", "index", "is_query"}`` samples.

    Args:
        records: the images (path, identity, camera).
        transform: PIL image -> tensor.
        query_count: the first ``query_count`` records are queries, the rest gallery (evaluation sets).
        query_camera_override: when not None, the camera reported for every query (validation on held-out
            single-camera identities uses a camera no gallery item has, see ``ReIDDataModule``).
    """

    def __init__(self, records: Sequence[ReIDRecord], transform: Transform, query_count: int = 0,
                 query_camera_override: int | None = None) -> None:
        self.records = list(records)
        self.transform = transform
        self.query_count = int(query_count)
        self.query_camera_override = query_camera_override

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        try:
            with Image.open(record.path) as image:
                picture = image.convert("RGB")
        except OSError as error:
            raise DatasetError(f"{record.path} cannot be read as an image ({error}); replace or remove it.") from None
        is_query = index < self.query_count
        camera = self.query_camera_override if is_query and self.query_camera_override is not None else record.camera
        return {"image": self.transform(picture), "identity": record.identity, "camera": camera,
                "index": index, "is_query": is_query}


__all__ = ["ReIDImageDataset", "eval_transform", "train_transform"]
