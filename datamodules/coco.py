"""COCO object detection data (the standard layout, read with pycocotools) for CenterNet (arXiv:1904.08189).

Layout under ``data_dir`` (what https://cocodataset.org distributes)::

    <data_dir>/annotations/instances_<split>.json     e.g. instances_train2017.json, instances_val2017.json
    <data_dir>/<split>/<file_name>                    the images of the split (or data.image_dirs.<split>)

The paper trains on trainval35k and evaluates on minival (2014 splits), the same images as train2017 and
val2017. Bad input is reported clearly: an annotation file that is missing, does not parse or lacks
``images``/``annotations``/``categories`` (error naming the file); image files that are missing (error naming
them) or do not decode (error naming the file, when read); boxes with zero or negative width or height
(skipped, counted in one warning per split). Category ids need not be contiguous (COCO's run from 1 to 90
with gaps): they are mapped to ``0..C-1`` in increasing id order, and :attr:`CocoDataModule.categories`
keeps the original ids and names so predictions are written with them.

``predict_dataloader()`` reads every image of ``predict_dir`` (jpg, jpeg, png, bmp, webp; sorted by name).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from datamodules.detection_transforms import (
    COCO_MEAN,
    COCO_STD,
    EvalCollate,
    EvalTransform,
    TrainAugmentation,
    TrainCollate,
)
from datamodules.sampling import epoch_seeded_train_loader
from visionsuite.datamodule import SuiteDataModule, check_declared_num_classes
from visionsuite.errors import ConfigError, DatasetError

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("images", "annotations", "categories")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def annotation_path(data_dir: str | Path, split: str) -> Path:
    """``<data_dir>/annotations/instances_<split>.json``."""
    return Path(data_dir) / "annotations" / f"instances_{split}.json"


def read_annotation_file(path: str | Path) -> dict[str, Any]:
    """Parse a COCO instances file, with an error naming the file when it is missing, broken or incomplete."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"COCO annotation file not found: {path}. Expected the COCO layout <data_dir>/annotations/"
            f"instances_<split>.json (set data.data_dir and data.<stage>_split, e.g. train2017 / val2017)."
        )
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"COCO annotation file {path} is not valid JSON ({error.msg} at line {error.lineno}, column "
            f"{error.colno}); the file is truncated or corrupt: download or export it again."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"Cannot read COCO annotation file {path}: {error}.") from None
    if not isinstance(data, dict):
        raise DatasetError(
            f"COCO annotation file {path} must hold a JSON object, found {type(data).__name__}."
        )
    missing = [key for key in REQUIRED_KEYS if not isinstance(data.get(key), list)]
    if missing:
        raise DatasetError(
            f"COCO annotation file {path} lacks the list(s) {', '.join(repr(k) for k in missing)}; an instances "
            "file has 'images', 'annotations' and 'categories' (see https://cocodataset.org/#format-data)."
        )
    return data


def coco_from_dict(data: Mapping[str, Any]) -> Any:
    """A ``pycocotools.coco.COCO`` built from an already parsed dict (without its console output)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dict(data)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def category_table(data: Mapping[str, Any], path: Path) -> list[dict[str, Any]]:
    """``[{"id", "name"}]`` sorted by id: list position = contiguous class index."""
    try:
        categories = sorted(
            ({"id": int(c["id"]), "name": str(c.get("name", c["id"]))} for c in data["categories"]),
            key=lambda c: c["id"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(
            f"COCO annotation file {path}: every category needs an integer 'id' ({error})."
        ) from None
    if not categories:
        raise DatasetError(f"COCO annotation file {path} has no categories.")
    ids = [c["id"] for c in categories]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"COCO annotation file {path} repeats category ids: {ids}.")
    return categories


class CocoDetection(Dataset):
    """One split: ``dataset[i]`` is a sample dict (see :meth:`__getitem__`).

    Args:
        annotation_file: ``instances_<split>.json``.
        image_dir: Folder holding the ``file_name`` of every image.
        categories: The category table (from the training split) that defines the class indices.
        train_transform: The training augmentation (returns image tensor, boxes, labels), or None.
        eval_transform: The evaluation transform (image only), used when ``train_transform`` is None.
        data: The already parsed annotation file (read from ``annotation_file`` when None).
    """

    def __init__(
        self,
        annotation_file: str | Path,
        image_dir: str | Path,
        categories: Sequence[Mapping[str, Any]],
        train_transform: TrainAugmentation | None = None,
        eval_transform: EvalTransform | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self.train_transform = train_transform
        self.eval_transform = eval_transform or EvalTransform()
        data = read_annotation_file(self.annotation_file) if data is None else data
        own = category_table(data, self.annotation_file)
        if [c["id"] for c in own] != [int(c["id"]) for c in categories]:
            raise DatasetError(
                f"{self.annotation_file} has category ids {[c['id'] for c in own]} but the training split has "
                f"{[int(c['id']) for c in categories]}; every split must share the training split's categories."
            )
        self.index_of_category = {int(c["id"]): index for index, c in enumerate(categories)}
        self.coco = coco_from_dict(data)
        self.images = sorted(data["images"], key=lambda image: int(image["id"]))
        self.image_ids = [int(image["id"]) for image in self.images]
        self._check_images_exist()
        self.boxes, self.labels = self._collect_boxes(data)

    def _check_images_exist(self) -> None:
        missing = [
            image["file_name"] for image in self.images if not (self.image_dir / image["file_name"]).is_file()
        ]
        if missing:
            raise DatasetError(
                f"{len(missing)} image file(s) listed in {self.annotation_file} are missing, e.g. "
                f"{self.image_dir / missing[0]}. Put the images of the split in {self.image_dir} (COCO layout: "
                "<data_dir>/<split>/<file_name>, or set data.image_dirs.<split>)."
            )

    def _collect_boxes(self, data: Mapping[str, Any]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        position = {image_id: index for index, image_id in enumerate(self.image_ids)}
        boxes: list[list[list[float]]] = [[] for _ in self.images]
        labels: list[list[int]] = [[] for _ in self.images]
        degenerate: list[Any] = []
        for annotation in data["annotations"]:
            image_id = annotation.get("image_id")
            if image_id not in position:
                raise DatasetError(
                    f"{self.annotation_file}: annotation {annotation.get('id')} refers to image_id "
                    f"{image_id}, which is not in 'images'."
                )
            category = annotation.get("category_id")
            if category not in self.index_of_category:
                raise DatasetError(
                    f"{self.annotation_file}: annotation {annotation.get('id')} has category_id "
                    f"{category}, which is not in 'categories'."
                )
            bbox = annotation.get("bbox")
            if not isinstance(bbox, list | tuple) or len(bbox) != 4:
                raise DatasetError(
                    f"{self.annotation_file}: annotation {annotation.get('id')} needs a 'bbox' "
                    f"[x, y, width, height], found {bbox!r}."
                )
            x, y, width, height = (float(value) for value in bbox)
            if width <= 0 or height <= 0:
                degenerate.append(annotation.get("id"))
                continue
            if annotation.get("iscrowd", 0):
                continue  # crowd regions are not objects to detect; the evaluator handles them
            boxes[position[image_id]].append([x, y, x + width, y + height])
            labels[position[image_id]].append(self.index_of_category[category])
        if degenerate:
            shown = ", ".join(str(value) for value in degenerate[:5]) + (
                ", ..." if len(degenerate) > 5 else ""
            )
            log.warning(
                "%s: skipped %d annotation(s) with zero or negative width/height (ids %s).",
                self.annotation_file,
                len(degenerate),
                shown,
            )
        self.num_skipped_boxes = len(degenerate)
        return (
            [np.asarray(b, dtype=np.float32).reshape(-1, 4) for b in boxes],
            [np.asarray(lab, dtype=np.int64) for lab in labels],
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Training: ``{"image", "boxes" (N, 4) xyxy, "labels" (N,)}``; evaluation: ``{"image", "image_id",
        "original_size" (h, w), "resize_factor", "file_name"}``."""
        info = self.images[index]
        image = load_rgb_image(self.image_dir / info["file_name"], self.annotation_file)
        if self.train_transform is not None:
            tensor, boxes, labels = self.train_transform(image, self.boxes[index], self.labels[index])
            return {
                "image": tensor,
                "boxes": torch.from_numpy(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4),
                "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            }
        return {
            "image": self.eval_transform(image),
            "image_id": info["id"],
            "file_name": info["file_name"],
            "original_size": (image.height, image.width),
            "resize_factor": 1.0,
        }


def load_rgb_image(path: Path, listed_in: Path | None = None) -> Image.Image:
    """Open and decode ``path`` as RGB, with an error naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as handle:
            return handle.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(
            f"Image file {path} is missing" + (f" (listed in {listed_in})." if listed_in else ".")
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        where = f" or remove its entry from {listed_in}" if listed_in else ""
        raise DatasetError(
            f"Cannot decode image {path} ({error}); the file is corrupt or not an image: replace it{where}."
        ) from None


class ImageFolderDataset(Dataset):
    """Every image of a folder (sorted by name), for ``mode=predict``.

    Image ids: when every file name is a number (COCO's ``000000397133.jpg``), that number, so predictions on
    a COCO image folder (e.g. test2017 for the evaluation server) carry the official ids; otherwise 1, 2, ...
    in name order.
    """

    def __init__(self, folder: str | Path, transform: EvalTransform) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DatasetError(f"data.predict_dir={self.folder} is not a folder; give a folder of images.")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise DatasetError(
                f"data.predict_dir={self.folder} holds no image ({', '.join(IMAGE_EXTENSIONS)})."
            )
        self.transform = transform
        stems = [path.stem for path in self.files]
        numeric = all(stem.isdigit() for stem in stems) and len({int(stem) for stem in stems}) == len(stems)
        self.image_ids = [int(stem) for stem in stems] if numeric else list(range(1, len(stems) + 1))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = load_rgb_image(self.files[index])
        return {
            "image": self.transform(image),
            "image_id": self.image_ids[index],
            "file_name": self.files[index].name,
            "original_size": (image.height, image.width),
            "resize_factor": 1.0,
        }


class CocoDataModule(SuiteDataModule):
    """COCO-format detection data with the CenterNet training augmentation (see the module docstring).

    Args:
        data_dir: Root of the COCO layout.
        train_split / val_split / test_split: Split names (``annotations/instances_<split>.json``).
        image_dirs: Optional ``{split: folder}`` for image folders outside ``<data_dir>/<split>``.
        predict_dir: Folder of images for ``mode=predict``.
        input_size: Side of the training crops (511).
        output_stride: Input pixels per output cell of the network (4).
        random_scales: Scales of the random crop window.
        crop_border: Minimum distance of the crop center from the image border (128, halved for small images).
        flip_probability, color_jitter, lighting_std, mean, std: The remaining augmentation values.
        gaussian_min_overlap, radius_formula: Target construction (see ``networks.detection.targets``).
        size_divisor: Evaluation images are padded to a multiple of it.
        batch_size, eval_batch_size, num_workers, pin_memory, seed: Loader settings (the training order at
            epoch ``e`` is seeded with ``seed + e``).
        num_classes: The config's category count (80), which the model follows; checked against the training
            annotations.
    """

    def __init__(
        self,
        data_dir: str,
        train_split: str = "train2017",
        val_split: str = "val2017",
        test_split: str = "val2017",
        image_dirs: Mapping[str, str] | None = None,
        predict_dir: str | None = None,
        input_size: int = 511,
        output_stride: int = 4,
        random_scales: Sequence[float] = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3),
        crop_border: int = 128,
        flip_probability: float = 0.5,
        color_jitter: float = 0.4,
        lighting_std: float = 0.1,
        mean: Sequence[float] = COCO_MEAN,
        std: Sequence[float] = COCO_STD,
        gaussian_min_overlap: float = 0.7,
        radius_formula: str = "official",
        size_divisor: int = 128,
        batch_size: int = 48,
        eval_batch_size: int = 1,
        num_workers: int = 4,
        pin_memory: bool = False,
        seed: int = 0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.declared_num_classes = num_classes
        for key, value in (
            ("input_size", input_size),
            ("output_stride", output_stride),
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("size_divisor", size_divisor),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"data.{key} must be a positive integer, got {value!r}.")
        if not random_scales or min(random_scales) <= 0:
            raise ConfigError(f"data.random_scales must be positive scales, got {random_scales!r}.")
        if radius_formula not in ("official", "exact"):
            raise ConfigError(f"data.radius_formula must be official or exact, got {radius_formula!r}.")
        if not 0 < gaussian_min_overlap < 1:
            raise ConfigError(f"data.gaussian_min_overlap must be in (0, 1), got {gaussian_min_overlap!r}.")
        self.data_dir = Path(data_dir)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.image_dirs = dict(image_dirs or {})
        self.predict_dir = predict_dir
        self.train_augmentation = TrainAugmentation(
            input_size, random_scales, crop_border, flip_probability, color_jitter, lighting_std, mean, std
        )
        self.eval_transform = EvalTransform(mean, std)
        self.output_stride = output_stride
        self.gaussian_min_overlap = gaussian_min_overlap
        self.radius_formula = radius_formula
        self.size_divisor = size_divisor
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory, self.seed = int(num_workers), bool(pin_memory), int(seed)
        self.categories: list[dict[str, Any]] | None = None
        self.datasets: dict[str, CocoDetection] = {}

    @property
    def num_classes(self) -> int | None:
        """Number of categories: the training annotations' once read, the config's before."""
        return self.declared_num_classes if self.categories is None else len(self.categories)

    def image_dir(self, split: str) -> Path:
        return Path(self.image_dirs.get(split, self.data_dir / split))

    def load_categories(self) -> list[dict[str, Any]]:
        """The category table of the training split (``[{"id", "name"}]``, position = class index)."""
        if self.categories is None:
            path = annotation_path(self.data_dir, self.splits["train"])
            self._train_data = read_annotation_file(path)
            categories = category_table(self._train_data, path)
            check_declared_num_classes(self.declared_num_classes, len(categories), f"{path} (its categories)")
            self.categories = categories
        return self.categories

    def _dataset(self, stage: str) -> CocoDetection:
        split = self.splits[stage]
        key = f"{stage}:{split}"
        if key not in self.datasets:
            categories = self.load_categories()
            path = annotation_path(self.data_dir, split)
            data = self._train_data if split == self.splits["train"] else None
            augmentation = self.train_augmentation if stage == "train" else None
            self.datasets[key] = CocoDetection(
                path, self.image_dir(split), categories, augmentation, self.eval_transform, data
            )
        return self.datasets[key]

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self._dataset("train")
            self._dataset("val")
        elif stage == "validate":
            self._dataset("val")
        elif stage == "test":
            self._dataset("test")

    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        collate = TrainCollate(
            len(self.load_categories()), self.output_stride, self.gaussian_min_overlap, self.radius_formula
        )
        return epoch_seeded_train_loader(
            self,
            dataset,
            self.seed,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate,
            drop_last=len(dataset) > self.batch_size,
        )

    @property
    def validates_on_test_split(self) -> bool:
        """True when the validation and test splits are one (COCO ``val2017`` for both; the shapes demo): then
        no checkpoint may be chosen by a validation metric."""
        return self.splits["val"] == self.splits["test"]

    def _eval_loader(self, dataset: Dataset) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=EvalCollate(self.size_divisor),
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self._dataset("val"))

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self._dataset("test"))

    def predict_dataloader(self) -> DataLoader:
        if not self.predict_dir:
            raise ConfigError("mode=predict needs a folder of images: add data.predict_dir=<folder>.")
        return self._eval_loader(ImageFolderDataset(self.predict_dir, self.eval_transform))

    def ground_truth(self, stage: str) -> Any:
        """The pycocotools ``COCO`` object of a stage's split (what the evaluator compares with)."""
        return self._dataset(stage).coco
