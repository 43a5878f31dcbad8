"""Networks for volumetric segmentation: thickened 2D (arXiv:1904.01150), plain 2D, 3D U-Net; loss; inference."""

from networks.segmentation.inference import VolumeInferer, volume_probabilities
from networks.segmentation.losses import DiceCrossEntropyLoss
from networks.segmentation.thickened2d import ThickenedUNet2D, plain_unet2d, thickened_unet2d
from networks.segmentation.unet3d import UNet3D

__all__ = ["DiceCrossEntropyLoss", "ThickenedUNet2D", "UNet3D", "VolumeInferer", "plain_unet2d", "thickened_unet2d",
           "volume_probabilities"]
