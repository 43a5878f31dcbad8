"""Sketchy-Extended and TU-Berlin-Extended for zero-shot SBIR (SAKE, arXiv:1904.03208 Sec. 4.1).

Layout: two trees of class folders under ``data_dir``: ``<sketch_dir>/<class>/*.png`` and
``<photo_dir>/<class>/*.jpg`` (see ``conf/data/sketchy.yaml`` / ``tuberlin.yaml`` for each benchmark's folder
names), and optionally a split file (see :mod:`datamodules.sbir.layout`).

Loaders:

* ``train``: seen classes, both domains, in batches of ``batch_size`` split as the official scripts split it
  (``sketch_fraction`` 1/3 on Sketchy: 13 sketches + 26 photos of 40; 1/10 on TU-Berlin: 4 + 36), an epoch lasting
  until the domain that runs out first is seen once (:mod:`datamodules.sbir.sampling`), SAKE's augmentation;
* ``val``: held-out images of the SEEN classes (``val_fraction`` of each class and domain): their sketches
  retrieve their photos. The papers have no validation split and report the model after the last epoch;
  validating on the unseen classes would pick checkpoints on the test classes, so validation here is a
  seen-class retrieval check and the experiments test the last checkpoint (``test_ckpt: last``);
* ``test``: every sketch of the unseen classes retrieves among every photo of the unseen classes;
* ``predict``: the images of ``predict_dir`` (treated as sketches) retrieve among the unseen-class photos.

Each item is ``{"image", "label" (index into class_names), "domain" (0 sketch, 1 photo), "path"}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from datamodules.sampling import EpochSeededRandomSampler
from datamodules.sbir.datasets import UNLABELLED, DomainImage, SketchPhotoDataset
from datamodules.sbir.layout import IMAGE_EXTENSIONS, ZeroShotSplit, check_domains, resolve_split, scan_domain
from datamodules.sbir.sampling import MixedDomainBatchSampler, domain_batch_sizes
from datamodules.sbir.transforms import eval_transform, train_transform
from visionsuite.datamodule import SuiteDataModule, check_declared_num_classes
from visionsuite.errors import ConfigError, DatasetError

SKETCH, PHOTO = 0, 1
TRAIN_DOMAINS = ("both", "photo")  # "photo": seen-class photos only (training the demo's teacher classifier)


class SketchPhotoDataModule(SuiteDataModule):
    """Zero-shot sketch/photo data (see the module docstring).

    Args:
        data_dir: the dataset root.
        sketch_dir / photo_dir: the class-folder trees of sketches and photos, relative to ``data_dir``.
        split_dir: folder (relative to ``data_dir``) of ``unseen_classes.txt`` / ``seen_classes.txt``.
        unseen_classes: number of unseen classes chosen when there is no split file.
        split_seed: seed of that choice and of the validation hold-out.
        batch_size: training batch (40 in the paper; split as :func:`~datamodules.sbir.sampling.domain_batch_sizes`).
        sketch_fraction: share of sketches in a training batch (Sketchy 1/3, TU-Berlin 1/10).
        val_fraction: share of each seen class's images (per domain) held out for validation.
        input_size: network input side (224).
        augment_probability: probability of SAKE's random affine transform (0.7).
        eval_batch_size: batch of the evaluation / prediction loaders.
        num_workers / pin_memory: DataLoader settings.
        predict_dir: folder of sketch images for ``mode=predict``.
        seed: seed of the training batch order.
        train_domains: ``both`` (SAKE's mixed batches) or ``photo`` (photos only, shuffled: the demo teacher's
            classifier is trained on them); validation then also keeps photos only.
        num_classes: the config's count of seen classes (the classifier's outputs), which the model follows;
            checked against the split.
    """

    def __init__(self, data_dir: str, sketch_dir: str, photo_dir: str, split_dir: str = "zeroshot",
                 unseen_classes: int = 25, split_seed: int = 0, batch_size: int = 40, sketch_fraction: float = 1 / 3,
                 val_fraction: float = 0.05, input_size: int = 224, augment_probability: float = 0.7,
                 eval_batch_size: int = 100, num_workers: int = 4, pin_memory: bool = False,
                 predict_dir: str | None = None, seed: int = 0, train_domains: str = "both",
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.declared_num_classes = num_classes
        if not 0 < sketch_fraction < 1:
            raise ConfigError(f"data.sketch_fraction={sketch_fraction}: must be strictly between 0 and 1.")
        if train_domains not in TRAIN_DOMAINS:
            raise ConfigError(f"data.train_domains={train_domains!r}: use one of {', '.join(TRAIN_DOMAINS)}.")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"data.val_fraction={val_fraction}: must be in [0, 1).")
        self.data_dir, self.sketch_dir, self.photo_dir, self.split_dir = Path(data_dir), sketch_dir, photo_dir, split_dir
        self.unseen_count, self.split_seed = unseen_classes, split_seed
        self.batch_size, self.sketch_fraction, self.val_fraction = batch_size, sketch_fraction, val_fraction
        self.input_size, self.augment_probability = input_size, augment_probability
        self.eval_batch_size, self.num_workers, self.pin_memory = eval_batch_size, num_workers, pin_memory
        self.predict_dir, self.seed, self.train_domains = predict_dir, seed, train_domains
        self.split: ZeroShotSplit | None = None
        self.items: dict[str, list[DomainImage]] = {}

    # ------------------------------------------------------------------ layout and split
    def prepare_dataset(self) -> None:
        """Hook for generated datasets (the demo writes its data here)."""

    def check_data(self) -> None:
        """Scan the folders, check them and fix the split and the item lists (cheap: no image is decoded)."""
        if self.split is not None:
            return
        self.prepare_dataset()
        sketch_root, photo_root = self.data_dir / self.sketch_dir, self.data_dir / self.photo_dir
        sketches = scan_domain(sketch_root, "sketch_dir")
        photos = scan_domain(photo_root, "photo_dir")
        check_domains(sketches, photos, sketch_root, photo_root)
        split = resolve_split(self.data_dir, self.split_dir, sketches, photos, self.unseen_count, self.split_seed)
        check_declared_num_classes(self.declared_num_classes, len(split.seen),
                                   f"the zero-shot split of {self.data_dir} (seen classes of {self.split_dir})")
        self.split = split
        self._build_items(sketches, photos)

    def _build_items(self, sketches: dict[str, list[Path]], photos: dict[str, list[Path]]) -> None:
        split = self.split
        rng = np.random.default_rng(self.split_seed + 1)
        train, val, test = [], [], []
        for name in split.class_names:
            class_id = split.class_id(name)
            for domain, files in ((SKETCH, sketches[name]), (PHOTO, photos[name])):
                items = [DomainImage(path, class_id, domain) for path in files]
                if name in split.unseen:
                    test.extend(items)
                    continue
                held_out = int(round(self.val_fraction * len(items)))
                if self.val_fraction > 0 and len(items) >= 2:
                    held_out = min(max(held_out, 1), len(items) - 1)
                chosen = set(rng.permutation(len(items))[:held_out].tolist()) if held_out else set()
                val.extend(item for k, item in enumerate(items) if k in chosen)
                train.extend(item for k, item in enumerate(items) if k not in chosen)
        self.items = {"train": train, "val": val, "test": test}

    @property
    def validates_on_test_split(self) -> bool:
        """False: validation retrieves held-out seen-class images; the unseen test classes are never validated on."""
        return False

    @property
    def class_names(self) -> tuple[str, ...]:
        self.check_data()
        return self.split.class_names

    @property
    def seen_class_ids(self) -> list[int]:
        """Indices into :attr:`class_names` of the seen classes, in the order of the classifier's outputs."""
        self.check_data()
        return [self.split.class_id(name) for name in self.split.seen]

    @property
    def num_classes(self) -> int:
        """Classes of the benchmark classifier: the seen classes."""
        self.check_data()
        return len(self.split.seen)

    # ------------------------------------------------------------------ loaders
    def setup(self, stage: str | None = None) -> None:
        self.check_data()

    def _loader(self, items: list[DomainImage], name: str) -> DataLoader:
        if not items:
            raise DatasetError(f"The {name} split of {self.data_dir} is empty.")
        return DataLoader(SketchPhotoDataset(items, eval_transform(self.input_size)), batch_size=self.eval_batch_size,
                          shuffle=False, num_workers=self.num_workers, pin_memory=self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        items = self.items["train"]
        sketches = [k for k, item in enumerate(items) if item.domain == SKETCH]
        photos = [k for k, item in enumerate(items) if item.domain == PHOTO]
        if self.train_domains == "photo":
            sampler = EpochSeededRandomSampler(items, self.seed, indices=photos)
            dataset = SketchPhotoDataset(items, train_transform(self.input_size, self.augment_probability))
            return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                              pin_memory=self.pin_memory, drop_last=len(photos) > self.batch_size)
        if not sketches or not photos:
            raise DatasetError(f"The seen classes of {self.data_dir} need training sketches and photos.")
        per_sketch, per_photo = domain_batch_sizes(self.batch_size, self.sketch_fraction)
        sampler = MixedDomainBatchSampler(sketches, photos, per_sketch, per_photo, self.seed)
        dataset = SketchPhotoDataset(items, train_transform(self.input_size, self.augment_probability))
        return DataLoader(dataset, batch_sampler=sampler, num_workers=self.num_workers, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        items = self.items["val"]
        if self.train_domains == "photo":
            items = [item for item in items if item.domain == PHOTO]
        return self._loader(items, "validation (held-out seen-class images)")

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.items["test"], "unseen-class")

    def predict_dataloader(self) -> DataLoader:
        if not self.predict_dir:
            raise ConfigError("mode=predict needs data.predict_dir=<folder of sketch images>.")
        folder = Path(self.predict_dir)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
        if not files:
            raise DatasetError(f"data.predict_dir={folder}: not a folder of images ({', '.join(IMAGE_EXTENSIONS)}).")
        gallery = [item for item in self.items["test"] if item.domain == PHOTO]
        queries = [DomainImage(path, UNLABELLED, SKETCH) for path in files]
        return self._loader(gallery + queries, "prediction")
