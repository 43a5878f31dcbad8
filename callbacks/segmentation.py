"""Files and pictures of the volumetric segmentation runs (a callback, so the module stays free of I/O), and the
drawing of one slice: the image, its label overlaid, the prediction overlaid.

* Each validation: the kept slices (image | label | prediction) as ``<run dir>/visualizations/val_*.png``, also
  sent to loggers that take images (``SuiteModule.log_images``).
* After the test: ``<run dir>/dice_per_case.json`` (Dice per class of every test case).
* ``mode=predict``: ``<run dir>/predictions/<case>.nii.gz`` (uint8 labels, the input's affine and header) and
  ``<case>.png`` (``num_predicted_slices`` slices with the prediction overlaid) for each input volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytorch_lightning as pl
from PIL import Image, ImageDraw

from callbacks.pictures import class_colour
from visionsuite.io import atomic_write_json

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


class SegmentationOutputs(pl.Callback):
    """Writes the pictures, the per-case Dice table and the predicted NIfTI volumes (see the module docstring).

    Args:
        num_predicted_slices: Slices drawn per predicted volume (evenly spaced around the most segmented one).
    """

    def __init__(self, num_predicted_slices: int = 3) -> None:
        self.num_predicted_slices = int(num_predicted_slices)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        overlays = getattr(pl_module, "overlays", [])
        if trainer.sanity_checking or not overlays or not trainer.is_global_zero:
            return
        grid = stack_rows([overlay_panels(o["image"], o["label"], o["prediction"],
                                          f"{o['case_id']} axis {o['axis']} slice {o['slice']}") for o in overlays])
        folder = Path(trainer.default_root_dir) / "visualizations"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"val_epoch{trainer.current_epoch:03d}_step{trainer.global_step:07d}.png"
        grid.save(path)
        pl_module.artifacts["visualizations"] = str(folder)
        pl_module.log_images("val/overlays", [grid], ["image | label | prediction"])

    def on_test_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        table = getattr(pl_module, "case_table", None)
        if table and trainer.is_global_zero:
            path = atomic_write_json(Path(trainer.default_root_dir) / "dice_per_case.json", table)
            pl_module.artifacts["dice_per_case"] = str(path)

    def on_predict_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None:
        if not outputs:
            return
        folder = Path(trainer.default_root_dir) / "predictions"
        folder.mkdir(parents=True, exist_ok=True)
        prediction = outputs["prediction"].numpy().astype(np.uint8)
        header = outputs["header"].copy()
        header.set_data_dtype(np.uint8)
        header["scl_slope"], header["scl_inter"] = 1.0, 0.0
        nib.save(nib.Nifti1Image(prediction, outputs["affine"], header), str(folder / f"{outputs['case_id']}.nii.gz"))
        axis, image = outputs["axis"], outputs["image"].numpy()
        centre = most_foreground_slice(prediction, axis)
        length = prediction.shape[axis]
        step = max(length // (2 * self.num_predicted_slices), 1)
        first = centre - step * (self.num_predicted_slices // 2)
        indices = sorted({min(max(first + i * step, 0), length - 1) for i in range(self.num_predicted_slices)})
        rows = [overlay_panels(np.take(image, i, axis), None, np.take(prediction, i, axis),
                               f"{outputs['case_id']} axis {axis} slice {i}") for i in indices]
        stack_rows(rows).save(folder / f"{outputs['case_id']}.png")
        pl_module.artifacts["predictions"] = str(folder)
