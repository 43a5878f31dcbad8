"""The tiny dataset each paper experiment reads, in its real on-disk format, sized for the paper's batch composition.

:func:`write_paper_data` writes, under one data folder (``paths.data_dir``), every dataset an experiment names
(:func:`paper_datasets`: CIFAR-10/100, ImageNet, COCO, Market-1501, DukeMTMC-reID, Sketchy, TU-Berlin, the two
Decathlon CT tasks) with the layout and file formats of the real download, the paper's class count where the
network's head depends on it, and enough identities, cameras, classes or cases that the paper's batch can be
drawn. Used by ``benchmarks/paper_experiments.py`` and the dry-run tests, so both run the same data.

Sizes, and why:

* CIFAR-10 / 100: 100 / 200 training images (the python pickles); batches of the benchmark are at most 16.
* ImageNet: the 1000 class folders (the paper's 1000-way head), 2 training and 1 validation JPEG each; the
  images are small files (the loaders crop and resize to the paper's 224).
* COCO: 4 training and 2 validation images at 480x640 with COCO's 80 category ids (the detector's 80 heatmaps).
* Market-1501: 30 training identities, 5 under each of the 6 cameras (the MCNL batch: 5 identities x 6 cameras
  x 8 images, arXiv:1909.10848 Sec. 4.1); DukeMTMC-reID: 32, 4 under each of 8 cameras (4 x 8 x 8). Every
  training identity is under one camera (the single-camera-training setting), images at 256x128.
* Sketchy: 125 classes (100 seen, 25 unseen; split 2: 104 / 21), TU-Berlin: 250 (220 / 30), with three times /
  ten times as many photos as sketches, so a batch of 1/3 (1/10) sketches is possible (SAKE arXiv:1904.03208
  Sec. 4.1); two sketches a class, so the held-out seen-class validation has sketches too; and the official
  ``cid_mask.pickle`` semantic mask (classes x 1000 teacher classes).
* Decathlon hepatic vessel / pancreas: 10 CT cases of 256x256x32 (the 256x256 training crops and 128x128x32
  patches of the configs fit; 1 validation and 2 test cases by the configs' patient-level fractions).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from datamodules.writers.cifar import write_cifar10, write_cifar100
from datamodules.writers.coco import write_tiny_coco
from datamodules.writers.imagefolder import write_image_folder
from datamodules.writers.market1501 import write_tiny_market1501
from datamodules.writers.nifti import spacing_affine, synthetic_cases, write_decathlon_dataset
from datamodules.writers.sketch_photo import (
    SHAPE_CLASSES,
    write_official_semantic_mask,
    write_sketch_photo_dataset,
)

#: COCO's 80 category ids (1..90 with gaps), as in instances_train2017.json.
COCO_CATEGORY_IDS = tuple(sorted(set(range(1, 91)) - {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}))
IMAGENET_CLASSES = 1000
TEACHER_CLASSES = 1000  # SAKE's teacher is an ImageNet classifier: the semantic mask has 1000 columns


def _write_imagenet(root: Path) -> None:
    folder = root / "imagenet"
    write_image_folder(folder, splits=("train",), num_classes=IMAGENET_CLASSES, images_per_class=2, image_size=32)
    write_image_folder(folder, splits=("val",), num_classes=IMAGENET_CLASSES, images_per_class=1, image_size=32)


def _write_coco(root: Path) -> None:
    write_tiny_coco(root / "coco", splits=("train2017", "val2017"), num_images=4, image_size=(480, 640),
                    category_ids=COCO_CATEGORY_IDS, objects_per_image=3, extension=".jpg")


def _write_reid(root: Path, dataset: str, cameras: int, identities_per_camera: int) -> None:
    identities = cameras * identities_per_camera
    write_tiny_market1501(root / dataset, train_identities=range(1, identities + 1),
                          test_identities=range(identities + 1, identities + 7), num_cameras=cameras,
                          images_per_camera=2, single_camera_training=True, image_size=(256, 128),
                          junk=1 if dataset == "market1501" else 0, dataset=dataset)


def _write_sbir(folder: Path, classes: int, sketches: int, photos: int, sketch_dir: str, photo_dir: str,
                split_dirs: tuple[str, ...]) -> None:
    names = [f"class_{index:03d}" for index in range(classes)]
    shapes = [SHAPE_CLASSES[index % len(SHAPE_CLASSES)] for index in range(classes)]
    write_sketch_photo_dataset(folder, names, sketches, photos, image_size=64, sketch_dir=sketch_dir,
                               photo_dir=photo_dir, drawn_shapes=shapes)
    mask = np.zeros((classes, TEACHER_CLASSES))
    mask[np.arange(classes), np.arange(classes) % TEACHER_CLASSES] = 1.0
    for split_dir in split_dirs:
        write_official_semantic_mask(folder / split_dir, names, mask)


def _write_decathlon(folder: Path, labels: dict[int, str], name: str) -> None:
    cases = synthetic_cases(10, shape=(256, 256, 32), seed=0, prefix=name.lower())
    write_decathlon_dataset(folder, cases, labels, spacing_affine((0.8, 0.8, 5.0)), name=name)


#: Dataset -> writer of it under a data folder (each writes into its configs' ``data_dir`` below that folder).
PAPER_DATASET_WRITERS: dict[str, Callable[[Path], None]] = {
    "cifar10": lambda root: write_cifar10(root, num_train=100, num_test=50),
    "cifar100": lambda root: write_cifar100(root, num_train=200, num_test=100),
    "imagenet": _write_imagenet,
    "coco": _write_coco,
    "market1501": lambda root: _write_reid(root, "market1501", cameras=6, identities_per_camera=5),
    "dukemtmc": lambda root: _write_reid(root, "dukemtmc", cameras=8, identities_per_camera=4),
    "sketchy": lambda root: _write_sbir(root / "Sketchy", 125, 2, 6, "256x256/sketch/tx_000000000000_ready",
                                        "EXTEND_image_sketchy", ("zeroshot1", "zeroshot2")),
    "tuberlin": lambda root: _write_sbir(root / "TUBerlin", 250, 2, 20, "png_ready", "ImageResized_ready",
                                         ("zeroshot",)),
    "msd_hepatic_vessel": lambda root: _write_decathlon(root / "Task08_HepaticVessel",
                                                        {0: "background", 1: "Vessel", 2: "Tumour"}, "HepaticVessel"),
    "msd_pancreas": lambda root: _write_decathlon(root / "Task07_Pancreas",
                                                  {0: "background", 1: "pancreas", 2: "cancer"}, "Pancreas"),
}
# An experiment's name says its dataset; the first match wins (cifar100 before cifar10, market before duke...).
_NAME_TOKENS = (("cifar100", "cifar100"), ("cifar10", "cifar10"), ("imagenet", "imagenet"), ("coco", "coco"),
                ("market", "market1501"), ("duke", "dukemtmc"), ("sketchy", "sketchy"), ("tuberlin", "tuberlin"),
                ("msd_hepatic_vessel", "msd_hepatic_vessel"), ("msd_pancreas", "msd_pancreas"))


def paper_datasets(experiment: str) -> list[str]:
    """The datasets of :data:`PAPER_DATASET_WRITERS` that ``experiment`` reads (by its name: ``pfs_resnet56_cifar10``
    -> ``["cifar10"]``); empty for an experiment on embedded or generated data."""
    for token, dataset in _NAME_TOKENS:
        if token in experiment:
            return [dataset]
    return []


def write_paper_data(experiment: str, root: str | Path) -> Path:
    """Write into ``root`` (the run's ``paths.data_dir``) every dataset ``experiment`` reads, each once: a dataset
    whose stamp ``<root>/.written_<dataset>`` exists is kept. Returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for dataset in paper_datasets(experiment):
        stamp = root / f".written_{dataset}"
        if not stamp.is_file():
            PAPER_DATASET_WRITERS[dataset](root)
            stamp.write_text("written by datamodules.writers.paper\n")
    return root


__all__ = ["COCO_CATEGORY_IDS", "PAPER_DATASET_WRITERS", "paper_datasets", "write_paper_data"]
