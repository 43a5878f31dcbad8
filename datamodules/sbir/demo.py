"""The embedded SBIR demo: drawn shape classes written once in the Sketchy layout (no download).

Sixteen shape classes (:data:`datamodules.writers.sketch_photo.SHAPE_CLASSES`); four are held out as unseen
(``DEMO_UNSEEN``: each has seen relatives, e.g. the hexagon between the pentagon and the heptagon, so
zero-shot transfer is possible). The folder also gets the split file and the demo's semantic mask (the
demo teacher's classes are the seen classes; see the writer). ``sbir_demo.json`` records the settings; a
folder written with other settings is an error.
"""

from __future__ import annotations

from pathlib import Path

from datamodules.sbir.datamodule import SketchPhotoDataModule
from datamodules.writers.generated import ensure_generated
from datamodules.writers.sketch_photo import SHAPE_CLASSES, write_sketch_photo_dataset

DEMO_UNSEEN = ("diamond", "ellipse", "hexagon", "star6")
STAMP_FILE = "sbir_demo.json"
GENERATOR_VERSION = 1


def ensure_demo_dataset(root: Path, sketches_per_class: int, photos_per_class: int, image_size: int, seed: int) -> Path:
    """Write the demo into ``root`` unless it is there with the same settings (atomically)."""
    stamp = {"version": GENERATOR_VERSION, "sketches_per_class": sketches_per_class,
             "photos_per_class": photos_per_class, "image_size": image_size, "seed": seed}
    return ensure_generated(root, lambda folder: write_sketch_photo_dataset(
        folder, SHAPE_CLASSES, sketches_per_class, photos_per_class, image_size, seed, unseen_classes=DEMO_UNSEEN,
        write_mask=True), stamp, stamp_file=STAMP_FILE, what="SBIR demo")


class SbirDemoDataModule(SketchPhotoDataModule):
    """:class:`SketchPhotoDataModule` on the generated demo (written on first use).

    Args:
        sketches_per_class / photos_per_class / image_size / generator_seed: the generator's settings.
        **kwargs: as :class:`SketchPhotoDataModule`.
    """

    def __init__(self, sketches_per_class: int = 40, photos_per_class: int = 80, image_size: int = 64,
                 generator_seed: int = 0, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.generator = (sketches_per_class, photos_per_class, image_size, generator_seed)

    def prepare_dataset(self) -> None:
        ensure_demo_dataset(self.data_dir, *self.generator)
