"""Files and pictures of the volumetric segmentation runs (a callback, so the module stays free of I/O).

* Each validation: the kept slices (image | label | prediction) as ``<run dir>/visualizations/val_*.png``, also
  sent to loggers that take images (``SuiteModule.log_images``).
* After the test: ``<run dir>/dice_per_case.json`` (Dice per class of every test case).
* ``mode=predict``: ``<run dir>/predictions/<case>.nii.gz`` (uint8 labels, the input's affine and header) and
  ``<case>.png`` (``num_predicted_slices`` slices with the prediction overlaid) for each input volume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytorch_lightning as pl

from lightning_modules.segmentation_drawing import most_foreground_slice, overlay_panels, stack_rows
from visionsuite.io import atomic_write_json


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
