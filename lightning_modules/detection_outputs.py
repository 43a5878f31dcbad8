"""What a CenterNet run writes besides checkpoints, as callbacks the detector declares (``configure_callbacks``).

* :class:`DetectionPictures`: ``<run dir>/categories.json`` at the start of fit (the category table, original ids
  and names in class-index order), and at every validation the predictions on the first ``num_visualized``
  images drawn into ``<run dir>/visualizations/`` and sent to loggers that take images (W&B, TensorBoard).
* :class:`DetectionPredictionWriter` (Lightning's ``BasePredictionWriter``, ``mode=predict``):
  ``<run dir>/predictions/`` receives ``detections.json`` (COCO results format with the dataset's original
  category ids, plus each box's three keypoints: CenterNet's triplet, arXiv:1904.08189 Sec. 3), ``images.json``
  (the image ids used there, COCO ``images`` format, and the category table) and one picture per image.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from PIL import Image
from pytorch_lightning.callbacks import BasePredictionWriter

from datamodules.detection_transforms import COCO_MEAN, COCO_STD
from lightning_modules.coco_evaluation import coco_results, gather_results
from lightning_modules.detection_drawing import draw_detections, image_grid, tensor_to_image
from networks.detection.decoding import Detections
from visionsuite.io import atomic_write_json

log = logging.getLogger(__name__)

VISUALIZATION_DIR = "visualizations"
PREDICTION_DIR = "predictions"


def draw_prediction(trainer: pl.Trainer, module: Any, image: torch.Tensor, original_size: Sequence[float],
                    factor: float, detections: Detections) -> Image.Image:
    """The (normalised, padded) input ``image`` back at its original size with ``detections`` drawn."""
    transform = getattr(getattr(trainer, "datamodule", None), "eval_transform", None)
    mean, std = getattr(transform, "mean", COCO_MEAN), getattr(transform, "std", COCO_STD)
    size = (round(original_size[0] * factor), round(original_size[1] * factor))
    picture = tensor_to_image(image, mean, std, size)
    if factor != 1.0:
        picture = picture.resize((round(original_size[1]), round(original_size[0])))
    names = [str(category["name"]) for category in module.category_table()]
    return draw_detections(picture, detections, names, module.hparams.draw_score_threshold)


class DetectionPictures(pl.Callback):
    """``categories.json`` and the validation pictures of a detector (see the module docstring).

    Args:
        num_visualized: validation images drawn at every validation (0: none).
    """

    def __init__(self, num_visualized: int = 4) -> None:
        self.num_visualized = int(num_visualized)
        self._kept: list[tuple[torch.Tensor, list[float], float, Detections]] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if pl_module.categories is not None and trainer.is_global_zero:
            path = atomic_write_json(Path(trainer.default_root_dir) / "categories.json", pl_module.categories)
            pl_module.artifacts["categories"] = str(path)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._kept = []

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking or not outputs:
            return
        for index, detections in enumerate(outputs):
            if len(self._kept) >= self.num_visualized:
                return
            self._kept.append((batch["images"][index].cpu(), batch["original_sizes"][index].tolist(),
                               batch["resize_factors"][index].item(), detections))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking or not self._kept or not trainer.is_global_zero:
            return
        grid = image_grid([draw_prediction(trainer, pl_module, *entry) for entry in self._kept])
        folder = Path(trainer.default_root_dir) / VISUALIZATION_DIR
        folder.mkdir(parents=True, exist_ok=True)
        grid.save(folder / f"val_epoch{trainer.current_epoch:03d}_step{trainer.global_step:07d}.png")
        pl_module.artifacts["visualizations"] = str(folder)
        pl_module.log_images("val/predictions", [grid])
        self._kept = []


class DetectionPredictionWriter(BasePredictionWriter):
    """Writes ``mode=predict`` outputs of a detector whose ``predict_step`` returns one ``Detections`` per image."""

    def __init__(self) -> None:
        super().__init__(write_interval="batch")
        self._records: dict[int, list[dict[str, Any]]] = {}
        self._images: dict[int, list[dict[str, Any]]] = {}
        self._drawn: dict[int, list[int]] = {}  # image id -> [boxes drawn on its picture]

    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self._records, self._images, self._drawn = {}, {}, {}
        (Path(trainer.default_root_dir) / PREDICTION_DIR).mkdir(parents=True, exist_ok=True)

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: Any, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Mapping[str, Any], batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        folder = Path(trainer.default_root_dir) / PREDICTION_DIR
        category_ids = [category["id"] for category in pl_module.category_table()]
        for index, detections in enumerate(prediction):
            image_id = int(batch["image_ids"][index])
            file_name = batch["file_names"][index]
            height, width = (int(value) for value in batch["original_sizes"][index].tolist())
            self._records[image_id] = coco_results(detections, image_id, category_ids, with_keypoints=True)
            self._images[image_id] = [{"id": image_id, "file_name": file_name, "height": height, "width": width}]
            picture = draw_prediction(trainer, pl_module, batch["images"][index].cpu(), (height, width),
                                      float(batch["resize_factors"][index]), detections)
            picture.save(folder / f"{Path(file_name).stem}.png")
            self._drawn[image_id] = [int((detections.scores >= pl_module.hparams.draw_score_threshold).sum())]

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        per_image = gather_results(self._records)
        records = [record for image_id in sorted(per_image) for record in per_image[image_id]]
        images = [entry for entries in gather_results(self._images).values() for entry in entries]
        drawn = [count for counts in gather_results(self._drawn).values() for count in counts]
        if not trainer.is_global_zero:
            return
        threshold = pl_module.hparams.draw_score_threshold
        message = (f"drew {sum(drawn)} boxes (score >= {threshold}) on {sum(1 for count in drawn if count)} of "
                   f"{len(drawn)} images")
        if not sum(drawn):
            message += f"; no detection reached model.draw_score_threshold={threshold}: lower it to draw weaker ones"
        log.info("mode=predict: %s; %d detections in detections.json", message, len(records))
        pl_module.summary_notes["predict"] = message
        folder = Path(trainer.default_root_dir) / PREDICTION_DIR
        detections_path = atomic_write_json(folder / "detections.json", records)
        atomic_write_json(folder / "images.json", {"images": sorted(images, key=lambda image: image["id"]),
                                                   "categories": pl_module.category_table()})
        pl_module.artifacts.update({"predictions": str(folder), "detections": str(detections_path)})


__all__ = ["DetectionPictures", "DetectionPredictionWriter", "draw_prediction"]
