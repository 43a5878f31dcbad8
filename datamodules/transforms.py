"""Image transforms of the DARTS family: CIFAR crop/flip/cutout, optional AutoAugment, ImageNet mobile setting.

The CIFAR pipeline follows DARTS (arXiv:1806.09055) and its successors PC-DARTS (arXiv:1907.05737) and
P-DARTS (arXiv:1904.12760): random 32x32 crop of the image padded by 4 pixels, horizontal flip, conversion
to a tensor, per-channel normalisation, then Cutout (DeVries & Taylor, arXiv:1708.04552) of side 16 when
training a found architecture. The ImageNet "mobile setting" pipeline adds colour jitter
``ColorJitter(0.4, 0.4, 0.4, 0.2)`` to the usual random-resized crop and flip.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision import transforms as T

#: Per-channel mean and standard deviation of the CIFAR-10 training set (pixel values in [0, 1]).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
#: Per-channel mean and standard deviation of the CIFAR-100 training set (pixel values in [0, 1]).
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, float, float] = (0.2673, 0.2564, 0.2762)
#: The usual ImageNet per-channel statistics (pixel values in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

CIFAR_IMAGE_SIZE = 32


class Cutout:
    """Zero one square of side ``length`` at a uniformly random centre (DeVries & Taylor, arXiv:1708.04552).

    As in the DARTS training code, the centre is drawn over the whole image and the square is clipped at the
    borders (so near a border less than ``length**2`` pixels are zeroed), and the transform is applied to the
    tensor *after* normalisation, so the hole holds the value 0 of the normalised image. The centre is
    drawn with torch's global RNG (not numpy's), so ``torch.manual_seed`` makes it reproducible and each
    DataLoader worker gets its own stream.

    Args:
        length: Side of the square in pixels; 0 (or less) turns the transform into the identity.
    """

    def __init__(self, length: int) -> None:
        self.length = int(length)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Return a copy of the ``(..., H, W)`` tensor ``image`` with the square zeroed."""
        if self.length <= 0:
            return image
        height, width = image.shape[-2], image.shape[-1]
        centre_y = int(torch.randint(height, (1,)).item())
        centre_x = int(torch.randint(width, (1,)).item())
        half = self.length // 2
        top, bottom = max(centre_y - half, 0), min(centre_y + half, height)
        left, right = max(centre_x - half, 0), min(centre_x + half, width)
        image = image.clone()
        image[..., top:bottom, left:right] = 0
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length})"


class Lighting:
    """AlexNet's PCA lighting noise (Krizhevsky et al., NeurIPS 2012, Sec. 4.1) on a ``(3, H, W)`` tensor in [0, 1].

    Adds ``eigvec @ (alpha * eigval)`` to every pixel, ``alpha ~ N(0, std)`` per image and principal component,
    with the ImageNet RGB eigenvalues and eigenvectors published with fb.resnet.torch (the values the MobileNet
    and Pruning from Scratch ImageNet recipes use). Drawn with torch's global RNG, like :class:`Cutout`.

    Args:
        std: standard deviation of ``alpha`` (0.1 in those recipes); 0 makes the transform the identity.
    """

    EIGENVALUES = (0.2175, 0.0188, 0.0045)
    EIGENVECTORS = ((-0.5675, 0.7192, 0.4009),
                    (-0.5808, -0.0045, -0.8140),
                    (-0.5836, -0.6948, 0.4203))

    def __init__(self, std: float) -> None:
        self.std = float(std)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.std <= 0:
            return image
        if image.shape[-3] != 3:
            raise ValueError(f"Lighting needs an RGB (3, H, W) tensor, got shape {tuple(image.shape)}")
        alpha = torch.randn(3) * self.std
        shift = torch.tensor(self.EIGENVECTORS) @ (alpha * torch.tensor(self.EIGENVALUES))
        return image + shift.to(image.dtype)[:, None, None]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(std={self.std})"


def cifar_train_transform(
    mean: Sequence[float],
    std: Sequence[float],
    crop_padding: int = 4,
    horizontal_flip: bool = True,
    cutout_length: int = 0,
    autoaugment: bool = False,
) -> T.Compose:
    """Training transform of 32x32 PIL images: crop, flip, [AutoAugment], to tensor, normalise, [cutout].

    Args:
        mean: Per-channel mean used by ``Normalize``.
        std: Per-channel standard deviation used by ``Normalize``.
        crop_padding: Zero padding before the random 32x32 crop; 0 disables the crop.
        horizontal_flip: Random horizontal flip with probability 0.5.
        cutout_length: Side of the Cutout square (16 in DARTS evaluation); 0 disables it.
        autoaugment: Apply torchvision's AutoAugment with the CIFAR10 policy (arXiv:1805.09501) after
            crop and flip, as in the AutoAugment paper.
    """
    steps: list = []
    if crop_padding > 0:
        steps.append(T.RandomCrop(CIFAR_IMAGE_SIZE, padding=crop_padding))
    if horizontal_flip:
        steps.append(T.RandomHorizontalFlip())
    if autoaugment:
        steps.append(T.AutoAugment(T.AutoAugmentPolicy.CIFAR10))
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    if cutout_length > 0:
        steps.append(Cutout(cutout_length))
    return T.Compose(steps)


def cifar_eval_transform(mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """Evaluation transform of CIFAR PIL images: to tensor and normalise."""
    return T.Compose([T.ToTensor(), T.Normalize(mean, std)])


def imagenet_train_transform(image_size: int = 224) -> T.Compose:
    """ImageNet training transform of the DARTS-family mobile setting.

    RandomResizedCrop to ``image_size``, horizontal flip, ``ColorJitter(brightness=0.4, contrast=0.4,
    saturation=0.4, hue=0.2)``, to tensor, normalise with the ImageNet statistics.
    """
    return T.Compose(
        [
            T.RandomResizedCrop(image_size),
            T.RandomHorizontalFlip(),
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def imagenet_eval_transform(image_size: int = 224, resize_size: int = 256) -> T.Compose:
    """ImageNet evaluation transform: resize the short side to ``resize_size``, centre crop, normalise."""
    return T.Compose(
        [
            T.Resize(resize_size),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def tensor_train_transform(
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int,
    crop_padding: int = 2,
    horizontal_flip: bool = False,
    cutout_length: int = 0,
) -> T.Compose:
    """Training transform of images that are already float tensors in [0, 1] (e.g. the embedded digits).

    Random ``image_size`` crop after zero padding (padding with 0 = black, as for PIL images), optional
    flip, normalise, optional cutout.
    """
    steps: list = []
    if crop_padding > 0:
        steps.append(T.RandomCrop(image_size, padding=crop_padding))
    if horizontal_flip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.Normalize(mean, std))
    if cutout_length > 0:
        steps.append(Cutout(cutout_length))
    return T.Compose(steps)


def tensor_eval_transform(mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """Evaluation transform of float tensor images in [0, 1]: normalise only."""
    return T.Compose([T.Normalize(mean, std)])
