"""Pictures of volumetric segmentations: one slice shown plain, with its label and with the prediction overlaid."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from lightning_modules.detection_drawing import class_colour

MIN_PANEL_SIDE = 160


def _grey(image: np.ndarray) -> np.ndarray:
    low, high = float(np.min(image)), float(np.max(image))
    scaled = (image - low) / max(high - low, 1e-6)
    return np.repeat((scaled * 255).astype(np.uint8)[..., None], 3, axis=2)


def _overlaid(grey: np.ndarray, label: np.ndarray | None, alpha: float = 0.55) -> np.ndarray:
    out = grey.astype(np.float32)
    if label is not None:
        for value in np.unique(label):
            if value == 0:
                continue
            mask = label == value
            out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(class_colour(int(value) - 1), dtype=np.float32)
    return out.astype(np.uint8)


def overlay_panels(image: np.ndarray, label: np.ndarray | None, prediction: np.ndarray, title: str = "") -> Image.Image:
    """A row of panels for one 2D slice: the image, the label overlaid (if any), the prediction overlaid.

    Arrays are indexed ``[x, y]`` (NIfTI order) and shown transposed (rows are y).
    """
    grey = _grey(image.T)
    panels = [grey] + ([_overlaid(grey, label.T)] if label is not None else []) + [_overlaid(grey, prediction.T)]
    row = Image.fromarray(np.concatenate(panels, axis=1))
    scale = max(1, int(np.ceil(MIN_PANEL_SIDE / max(grey.shape[0], 1))))
    row = row.resize((row.width * scale, row.height * scale), Image.NEAREST)
    if title:
        ImageDraw.Draw(row).text((3, 2), title, fill=(255, 255, 0))
    return row


def stack_rows(rows: Sequence[Image.Image]) -> Image.Image:
    """Rows one above the other (left-aligned, black background)."""
    width, height = max(r.width for r in rows), sum(r.height for r in rows)
    canvas = Image.new("RGB", (width, height))
    top = 0
    for row in rows:
        canvas.paste(row, (0, top))
        top += row.height
    return canvas


def most_foreground_slice(label: np.ndarray, axis: int) -> int:
    """The index along ``axis`` of the slice with the most foreground voxels (the middle one if none)."""
    counts = (label > 0).sum(axis=tuple(d for d in range(label.ndim) if d != axis))
    return int(np.argmax(counts)) if counts.max() > 0 else label.shape[axis] // 2
