"""Networks for volumetric segmentation: thickened 2D (arXiv:1904.01150), plain 2D, the MONAI 3D baselines
(UNet, nnU-Net-style DynUNet); whole-volume inference."""

from networks.segmentation.dynunet import DynUNet3D, nnunet_kernels_and_strides
from networks.segmentation.inference import VolumeInferer, volume_probabilities
from networks.segmentation.thickened2d import ThickenedUNet2D, plain_unet2d, thickened_unet2d
from networks.segmentation.unet3d import UNet3D

__all__ = ["DynUNet3D", "ThickenedUNet2D", "UNet3D", "VolumeInferer", "nnunet_kernels_and_strides", "plain_unet2d",
           "thickened_unet2d", "volume_probabilities"]
