"""What a CenterNet run writes besides checkpoints, as callbacks the detector declares (``configure_callbacks``).

* :class:`DetectionPictures`: ``<run dir>/categories.json`` at the start of fit (the category table, original ids
  and names in class-index order), and at every validation the predictions on the first ``num_visualized``
  images drawn into ``<run dir>/visualizations/`` and sent to loggers that take images (W&B, TensorBoard).
* :class:`DetectionPredictionWriter` (Lightning's ``BasePredictionWriter``, ``mode=predict``):
  ``<run dir>/predictions/`` receives ``detections.json`` (COCO results format with the dataset's original
  category ids, plus each box's three keypoints: CenterNet's triplet, arXiv:1904.08189 Sec. 3), ``images.json``
  (the image ids used there, COCO ``images`` format, and the category table) and one picture per image.

Pictures (:func:`draw_detections`): each box with its class and score, and its three keypoints (CenterNet's
triplet): the top-left and bottom-right corners as filled squares, the center keypoint that validated the box as
a filled circle, all in the colour of the class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image, ImageDraw
from pytorch_lightning.callbacks import BasePredictionWriter

from callbacks.pictures import class_colour
from datamodules.detection_transforms import COCO_MEAN, COCO_STD
from metrics.detection import coco_results
from networks.detection.decoding import Detections
from visionsuite.io import atomic_write_json

log = logging.getLogger(__name__)

VISUALIZATION_DIR = "visualizations"
PREDICTION_DIR = "predictions"

def tensor_to_image(
    image: torch.Tensor, mean: Sequence[float], std: Sequence[float], size: Sequence[int] | None = None
) -> Image.Image:
    """Undo the normalisation of a ``(3, H, W)`` tensor; crop the padding to ``size = (h, w)`` when given."""
    array = image.detach().cpu().float().numpy().transpose(1, 2, 0)
    array = array * np.asarray(std, dtype=np.float32) + np.asarray(mean, dtype=np.float32)
    if size is not None:
        array = array[: int(size[0]), : int(size[1])]
    return Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8))


def draw_detections(
    image: Image.Image, detections: Detections, class_names: Sequence[str], score_threshold: float = 0.3
) -> Image.Image:
    """A copy of ``image`` with the detections scoring at least ``score_threshold`` drawn on it."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    radius = max(2, round(min(canvas.size) / 120))
    keep = detections.scores >= score_threshold
    boxes = detections.boxes[keep].detach().cpu().tolist()
    centers = detections.centers[keep].detach().cpu().tolist()
    labels = detections.labels[keep].detach().cpu().tolist()
    scores = detections.scores[keep].detach().cpu().tolist()
    for box, center, label, score in sorted(
        zip(boxes, centers, labels, scores, strict=True), key=lambda d: d[3]
    ):
        colour = class_colour(label)
        x1, y1, x2, y2 = box
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=max(1, radius // 2))
        for x, y in ((x1, y1), (x2, y2)):
            draw.rectangle(
                [x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255)
            )
        cx, cy = center
        draw.ellipse(
            [cx - radius, cy - radius, cx + radius, cy + radius], fill=colour, outline=(255, 255, 255)
        )
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        text = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        text_y = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1 + 1
        draw.rectangle([x1, text_y, x1 + (right - left) + 2, text_y + (bottom - top) + 2], fill=colour)
        draw.text((x1 + 1, text_y), text, fill=(255, 255, 255))
    return canvas


def image_grid(images: Sequence[Image.Image], columns: int = 4, padding: int = 2) -> Image.Image:
    """Tile images (each placed at its own size) into one picture, ``columns`` per row."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    cell_w = max(image.width for image in images) + padding
    cell_h = max(image.height for image in images) + padding
    grid = Image.new("RGB", (columns * cell_w + padding, rows * cell_h + padding), (255, 255, 255))
    for index, image in enumerate(images):
        grid.paste(image, (padding + (index % columns) * cell_w, padding + (index // columns) * cell_h))
    return grid


def gather_results(per_image: dict[int, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """``{image_id: records}`` of all processes (unchanged when not distributed).

    An image seen by several processes (a distributed sampler pads the last batch with repeated images)
    keeps one copy of its records, so padding never adds duplicate detections.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return per_image
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, per_image)
    merged: dict[int, list[dict[str, Any]]] = {}
    for part in gathered:
        for image_id, records in part.items():
            merged.setdefault(image_id, records)
    return merged



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


__all__ = ["DetectionPictures", "DetectionPredictionWriter", "draw_detections", "draw_prediction",
           "gather_results", "image_grid", "tensor_to_image"]
