"""Zero-shot sketch-based image retrieval data (SAKE, arXiv:1904.03208): Sketchy / TU-Berlin Extended, demo."""

from datamodules.sbir.datamodule import PHOTO, SKETCH, SketchPhotoDataModule
from datamodules.sbir.demo import SbirDemoDataModule
from datamodules.sbir.layout import ZeroShotSplit

__all__ = ["PHOTO", "SKETCH", "SbirDemoDataModule", "SketchPhotoDataModule", "ZeroShotSplit"]
