"""LightningDataModules of the suite (classification: CIFAR-10/100, ImageNet, embedded digits; detection: COCO, shapes)."""

from datamodules.cifar import CIFARDataModule
from datamodules.classification import ClassificationDataModule
from datamodules.coco import CocoDataModule
from datamodules.digits import DigitsDataModule
from datamodules.imagenet import ImageNetDataModule
from datamodules.sampling import EpochSeededRandomSampler
from datamodules.shapes import ShapesDataModule

__all__ = [
    "CIFARDataModule",
    "ClassificationDataModule",
    "CocoDataModule",
    "DigitsDataModule",
    "EpochSeededRandomSampler",
    "ImageNetDataModule",
    "ShapesDataModule",
]
