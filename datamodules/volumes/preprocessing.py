"""Intensity windowing / normalisation of CT volumes and resampling to a voxel spacing.

CT intensities are Hounsfield units: clipping to a window (e.g. [-100, 240] for abdominal soft tissue and
contrast-filled vessels) and scaling to [0, 1] is the usual input of abdominal CT networks (the thickened 2D
paper, arXiv:1904.01150, does not state its window; it is a config value here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from visionsuite.errors import ConfigError

NORMALISATIONS = ("minmax", "zscore", "none")


def check_window(window: Sequence[float] | None) -> tuple[float, float] | None:
    if window is None:
        return None
    if len(window) != 2 or not float(window[0]) < float(window[1]):
        raise ConfigError(f"data.window={list(window)}: give [low, high] in HU with low < high, or null.")
    return float(window[0]), float(window[1])


def window_and_normalise(volume: np.ndarray, window: tuple[float, float] | None, normalisation: str) -> np.ndarray:
    """Clip ``volume`` to ``window`` (HU) then normalise it.

    ``minmax`` maps the window (or the volume's range without one) to [0, 1]; ``zscore`` subtracts the mean and
    divides by the standard deviation of the clipped volume; ``none`` keeps the clipped values.
    """
    if normalisation not in NORMALISATIONS:
        raise ConfigError(f"data.normalisation={normalisation!r}: use one of {', '.join(NORMALISATIONS)}.")
    volume = volume.astype(np.float32, copy=False)
    low, high = window if window is not None else (float(volume.min()), float(volume.max()))
    clipped = np.clip(volume, low, high)
    if normalisation == "minmax":
        return (clipped - low) / max(high - low, 1e-6)
    if normalisation == "zscore":
        return (clipped - clipped.mean()) / max(float(clipped.std()), 1e-6)
    return clipped


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    """The shape of a volume of ``shape`` voxels of ``spacing`` mm once resampled to ``target`` mm."""
    return tuple(max(int(round(n * s / t)), 1) for n, s, t in zip(shape, spacing, target, strict=True))


def resample(volume: torch.Tensor, size: Sequence[int], is_label: bool) -> torch.Tensor:
    """``volume`` (X, Y, Z) or (C, X, Y, Z) resampled to ``size``: trilinear for intensities and probabilities,
    nearest neighbour for labels."""
    if tuple(volume.shape[-3:]) == tuple(size):
        return volume
    batched = volume[None] if volume.dim() == 4 else volume[None, None]
    if is_label:
        out = F.interpolate(batched.float(), size=tuple(size), mode="nearest-exact").to(volume.dtype)
    else:
        out = F.interpolate(batched.float(), size=tuple(size), mode="trilinear", align_corners=False).to(volume.dtype)
    return out[0] if volume.dim() == 4 else out[0, 0]
