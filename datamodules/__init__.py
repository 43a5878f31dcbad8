"""LightningDataModules of the suite (classification: CIFAR-10/100, ImageNet, embedded digits)."""

from datamodules.cifar import CIFARDataModule
from datamodules.classification import ClassificationDataModule
from datamodules.digits import DigitsDataModule
from datamodules.imagenet import ImageNetDataModule
from datamodules.sampling import EpochSeededRandomSampler

__all__ = [
    "CIFARDataModule",
    "ClassificationDataModule",
    "DigitsDataModule",
    "EpochSeededRandomSampler",
    "ImageNetDataModule",
]
