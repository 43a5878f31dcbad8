"""Transforms: Cutout invariants, CIFAR/ImageNet pipelines, AutoAugment option."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from datamodules.transforms import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    Cutout,
    cifar_eval_transform,
    cifar_train_transform,
    imagenet_eval_transform,
    imagenet_train_transform,
    tensor_eval_transform,
    tensor_train_transform,
)


def _zero_box(image: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the zeroed pixels, asserting they form one rectangle on every channel."""
    zeros = image == 0
    assert torch.equal(zeros, zeros[:1].expand_as(zeros)), "cutout must zero the same pixels on every channel"
    rows = torch.nonzero(zeros[0].any(dim=1)).flatten()
    cols = torch.nonzero(zeros[0].any(dim=0)).flatten()
    if len(rows) == 0:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    assert bool(zeros[0, top:bottom, left:right].all()), "zeroed pixels must fill a rectangle"
    assert int(zeros[0].sum()) == (bottom - top) * (right - left)
    return top, bottom, left, right


def test_cutout_zeroes_one_square_clipped_at_borders():
    torch.manual_seed(0)
    full_squares = 0
    for _ in range(200):
        image = torch.rand(3, 32, 32) + 0.5
        box = _zero_box(Cutout(16)(image))
        assert box is not None
        top, bottom, left, right = box
        assert 0 < bottom - top <= 16 and 0 < right - left <= 16
        full_squares += (bottom - top, right - left) == (16, 16)
    assert full_squares > 0


def test_cutout_covers_small_image_and_leaves_input_untouched():
    image = torch.ones(3, 8, 8)
    out = Cutout(16)(image)
    assert torch.count_nonzero(out) == 0  # any centre of an 8x8 image: the clipped 16x16 square covers it
    assert torch.count_nonzero(image) == image.numel()


def test_cutout_length_zero_is_identity():
    image = torch.rand(3, 32, 32) + 0.5
    assert torch.equal(Cutout(0)(image), image)
    default_steps = cifar_train_transform(CIFAR10_MEAN, CIFAR10_STD).transforms
    assert not any(isinstance(step, Cutout) for step in default_steps)


def test_cutout_is_reproducible_with_torch_seed():
    image = torch.rand(3, 32, 32) + 0.5
    torch.manual_seed(3)
    first = Cutout(16)(image)
    torch.manual_seed(3)
    assert torch.equal(Cutout(16)(image), first)


def _pil(size: tuple[int, int] = (32, 32)) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_cifar_train_transform_pipeline_and_cutout_after_normalise():
    transform = cifar_train_transform(CIFAR10_MEAN, CIFAR10_STD, cutout_length=16)
    kinds = [type(step) for step in transform.transforms]
    assert kinds == [T.RandomCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize, Cutout]
    torch.manual_seed(0)
    out = transform(_pil())
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert _zero_box(out) is not None


def test_cifar_train_transform_options():
    transform = cifar_train_transform(CIFAR10_MEAN, CIFAR10_STD, crop_padding=0, horizontal_flip=False)
    assert [type(step) for step in transform.transforms] == [T.ToTensor, T.Normalize]
    assert torch.equal(transform(_pil()), cifar_eval_transform(CIFAR10_MEAN, CIFAR10_STD)(_pil()))


def test_autoaugment_option_builds_and_runs():
    transform = cifar_train_transform(CIFAR10_MEAN, CIFAR10_STD, autoaugment=True, cutout_length=16)
    augment = [step for step in transform.transforms if isinstance(step, T.AutoAugment)]
    assert len(augment) == 1 and augment[0].policy == T.AutoAugmentPolicy.CIFAR10
    torch.manual_seed(0)
    for _ in range(5):
        assert transform(_pil()).shape == (3, 32, 32)


def test_imagenet_transforms():
    train = imagenet_train_transform(image_size=32)
    jitter = next(step for step in train.transforms if isinstance(step, T.ColorJitter))
    assert jitter.brightness == (0.6, 1.4) and jitter.contrast == (0.6, 1.4)
    assert jitter.saturation == (0.6, 1.4) and jitter.hue == (-0.2, 0.2)
    assert train(_pil((64, 48))).shape == (3, 32, 32)
    evaluation = imagenet_eval_transform(image_size=32, resize_size=36)
    out = evaluation(_pil((64, 48)))
    assert out.shape == (3, 32, 32)
    assert torch.equal(out, evaluation(_pil((64, 48))))


def test_tensor_transforms():
    image = torch.rand(3, 32, 32)
    torch.manual_seed(0)
    out = tensor_train_transform((0.5,) * 3, (0.25,) * 3, 32, crop_padding=2, cutout_length=8)(image)
    assert out.shape == (3, 32, 32)
    assert torch.allclose(tensor_eval_transform((0.5,) * 3, (0.25,) * 3)(image), (image - 0.5) / 0.25)
