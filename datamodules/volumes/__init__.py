"""Volumetric (NIfTI) segmentation data: layouts, preprocessing, cached cases, slice-stack samples."""

from datamodules.volumes.datamodule import VolumeDataModule
from datamodules.volumes.demo import SyntheticVolumeDataModule

__all__ = ["SyntheticVolumeDataModule", "VolumeDataModule"]
