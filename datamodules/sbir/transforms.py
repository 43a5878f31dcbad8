"""Image transforms of SAKE (arXiv:1904.03208 Sec. 4.1 and the official data loaders).

Training: with probability 0.7 a random affine transform whose four parts are each applied with
probability 1/2 (official code): horizontal flip, anisotropic scale (x and y drawn apart in [0.7, 1.3]),
rotation in [-30, 30] degrees and shift in [-10, 10] pixels at the official 256-pixel images (scaled to
the image size here). Then resize to ``input_size`` (224) and ImageNet normalisation. Differences from the
official skimage warp, both deliberate: the transform is about the image centre (skimage: the top-left
corner) and uncovered pixels are white (skimage: black), which keeps sketches black on white.
"""

from __future__ import annotations

import math
import random

from PIL import Image
from torchvision import transforms as T

from datamodules.transforms import IMAGENET_MEAN, IMAGENET_STD

OFFICIAL_IMAGE_SIDE = 256  # the official data are 256x256; shifts of 10 px are relative to it


class SakeRandomAffine:
    """SAKE's random flip / scale / rotation / shift, applied as a whole with probability ``probability``."""

    def __init__(self, probability: float = 0.7, scale: tuple[float, float] = (0.7, 1.3), degrees: float = 30.0,
                 shift_fraction: float = 10 / OFFICIAL_IMAGE_SIDE) -> None:
        self.probability, self.scale, self.degrees, self.shift_fraction = probability, scale, degrees, shift_fraction

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() >= self.probability:
            return image
        if random.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        sx, sy = (random.uniform(*self.scale), random.uniform(*self.scale)) if random.random() < 0.5 else (1.0, 1.0)
        angle = math.radians(random.uniform(-self.degrees, self.degrees)) if random.random() < 0.5 else 0.0
        width, height = image.size
        shift = self.shift_fraction * width
        tx, ty = (random.uniform(-shift, shift), random.uniform(-shift, shift)) if random.random() < 0.5 else (0.0, 0.0)
        # forward map p' = c + R S (p - c) + t; PIL wants the inverse map output -> input
        cos, sin = math.cos(angle), math.sin(angle)
        a, b, d, e = cos / sx, sin / sx, -sin / sy, cos / sy
        cx, cy = width / 2, height / 2
        ox, oy = cx + tx, cy + ty
        coefficients = (a, b, cx - a * ox - b * oy, d, e, cy - d * ox - e * oy)
        return image.transform(image.size, Image.AFFINE, coefficients, resample=Image.BILINEAR,
                               fillcolor=(255, 255, 255))


def train_transform(input_size: int, probability: float = 0.7) -> T.Compose:
    """SAKE's training pipeline (see the module docstring)."""
    return T.Compose([SakeRandomAffine(probability), T.Resize((input_size, input_size)), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(input_size: int) -> T.Compose:
    """Resize and normalise (no augmentation)."""
    return T.Compose([T.Resize((input_size, input_size)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
