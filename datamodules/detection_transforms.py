"""Detection augmentation and batching of CornerNet / CenterNet (arXiv:1808.01244 Sec. 4.1, arXiv:1904.08189 Sec. 4.2).

Training (official code, ``sample/coco.py``): a random crop window of side ``input_size * scale`` with
``scale`` drawn from ``random_scales`` (``np.arange(0.6, 1.4, 0.1)``) whose center lies at least
``border`` (128, halved for small images) pixels inside the image, zero padding where the window leaves the
image, resized to ``input_size`` (511); boxes are clipped to the window and dropped when they vanish; a
horizontal flip with probability 0.5; colour jitter (brightness, contrast and saturation, each by a factor
``1 + U(-0.4, 0.4)``, in random order); PCA lighting noise (AlexNet, std 0.1); normalisation by the COCO
mean and standard deviation. Random draws use torch's global generator (seeded per worker by Lightning).

Evaluation keeps the original resolution (as the paper tests at scale 1) and pads the batch at the bottom and
right to a multiple of ``size_divisor``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from networks.detection.targets import build_targets, collate_targets

#: COCO pixel statistics of the official code (given there in BGR order; RGB here), pixel values in [0, 1].
COCO_MEAN: tuple[float, float, float] = (0.47026115, 0.44719302, 0.40789654)
COCO_STD: tuple[float, float, float] = (0.27809835, 0.27408164, 0.28863828)
#: PCA of the training pixels used for lighting noise by the official code (rows reordered from BGR to RGB).
PCA_EIGENVALUES = np.array([0.2141788, 0.01817699, 0.00091497], dtype=np.float32)
PCA_EIGENVECTORS = np.array(
    [
        [-0.56089297, 0.71832671, 0.41158938],
        [-0.5832747, 0.00994535, -0.81221408],
        [-0.58752847, -0.69563484, 0.41340352],
    ],
    dtype=np.float32,
)
#: Luma weights (ITU-R 601) of the grey image used by saturation and contrast jitter.
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

DetectionSample = dict[str, Any]


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def crop_border(border: int, size: int) -> int:
    """The official ``_get_border``: halve ``border`` until the window center has room inside ``size``."""
    divisor = 1
    while size - border // divisor <= border // divisor:
        divisor *= 2
    return border // divisor


def random_scale_crop(
    image: Image.Image,
    boxes: np.ndarray,
    labels: np.ndarray,
    input_size: int,
    scales: Sequence[float],
    border: int,
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Crop a ``input_size * scale`` window around a random center, resize it to ``input_size``, move the boxes."""
    width, height = image.size
    scale = float(scales[int(torch.randint(len(scales), ()))])
    window = max(int(input_size * scale), 1)
    w_border, h_border = crop_border(border, width), crop_border(border, height)
    center_x = int(torch.randint(w_border, max(width - w_border, w_border + 1), ()))
    center_y = int(torch.randint(h_border, max(height - h_border, h_border + 1), ()))
    left, top = center_x - window // 2, center_y - window // 2
    cropped = image.crop((left, top, left + window, top + window))  # zero fill outside the image
    resized = cropped.resize((input_size, input_size), Image.BILINEAR)
    factor = input_size / window
    boxes = (boxes - np.array([left, top, left, top], dtype=np.float32)) * factor
    boxes = np.clip(boxes, 0, input_size)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return resized, boxes[keep], labels[keep]


def color_jitter(image: np.ndarray, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation by ``1 + U(-strength, strength)`` each, in random order (HWC, [0, 1])."""

    def brightness(x: np.ndarray) -> np.ndarray:
        return x * (1 + _uniform(-strength, strength))

    def contrast(x: np.ndarray) -> np.ndarray:
        alpha = 1 + _uniform(-strength, strength)
        return alpha * x + (1 - alpha) * float((x @ GREY_WEIGHTS).mean())

    def saturation(x: np.ndarray) -> np.ndarray:
        alpha = 1 + _uniform(-strength, strength)
        return alpha * x + (1 - alpha) * (x @ GREY_WEIGHTS)[..., None]

    operations = (brightness, contrast, saturation)
    for position in torch.randperm(3).tolist():
        image = operations[position](image)
    return image


def pca_lighting(image: np.ndarray, std: float) -> np.ndarray:
    """AlexNet's PCA lighting noise: add ``eigenvectors @ (eigenvalues * N(0, std))`` to every pixel."""
    alpha = torch.randn(3).numpy().astype(np.float32) * std
    return image + PCA_EIGENVECTORS @ (PCA_EIGENVALUES * alpha)


def to_normalized_tensor(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """HWC float image in [0, 1] -> normalised CHW tensor."""
    array = (image - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


class TrainAugmentation:
    """The training pipeline of the module docstring: ``(PIL image, boxes xyxy, labels) -> (tensor, boxes, labels)``."""

    def __init__(
        self,
        input_size: int = 511,
        random_scales: Sequence[float] = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3),
        border: int = 128,
        flip_probability: float = 0.5,
        color_jitter: float = 0.4,
        lighting_std: float = 0.1,
        mean: Sequence[float] = COCO_MEAN,
        std: Sequence[float] = COCO_STD,
    ) -> None:
        self.input_size = int(input_size)
        self.random_scales = [float(scale) for scale in random_scales]
        self.border = int(border)
        self.flip_probability = float(flip_probability)
        self.color_jitter = float(color_jitter)
        self.lighting_std = float(lighting_std)
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(
        self, image: Image.Image, boxes: np.ndarray, labels: np.ndarray
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        image, boxes, labels = random_scale_crop(
            image, boxes, labels, self.input_size, self.random_scales, self.border
        )
        array = np.asarray(image, dtype=np.float32) / 255.0
        if float(torch.rand(())) < self.flip_probability:
            array = array[:, ::-1]
            boxes = boxes.copy()
            boxes[:, [0, 2]] = self.input_size - boxes[:, [2, 0]]
        if self.color_jitter > 0:
            array = color_jitter(array, self.color_jitter)
        if self.lighting_std > 0:
            array = pca_lighting(array, self.lighting_std)
        return to_normalized_tensor(array, self.mean, self.std), boxes, labels


class EvalTransform:
    """Evaluation: the original image, normalised (no resize)."""

    def __init__(self, mean: Sequence[float] = COCO_MEAN, std: Sequence[float] = COCO_STD) -> None:
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return to_normalized_tensor(np.asarray(image, dtype=np.float32) / 255.0, self.mean, self.std)


class TrainCollate:
    """Stacks training samples and builds the CenterNet targets on the stride-``output_stride`` grid.

    Args:
        num_classes: Heatmap channels.
        output_stride: Input pixels per output cell (4 for the Hourglass: 511 -> 128).
        min_overlap: IoU kept inside the Gaussian radius (0.7).
        radius_formula: ``"official"`` or ``"exact"`` (see ``networks.detection.targets.gaussian_radius``).
    """

    def __init__(
        self,
        num_classes: int,
        output_stride: int = 4,
        min_overlap: float = 0.7,
        radius_formula: str = "official",
    ) -> None:
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.min_overlap = min_overlap
        self.radius_formula = radius_formula

    def __call__(self, samples: Sequence[DetectionSample]) -> dict[str, Any]:
        images = torch.stack([sample["image"] for sample in samples])
        in_h, in_w = images.shape[-2:]
        out_size = (-(-in_h // self.output_stride), -(-in_w // self.output_stride))
        targets = [
            build_targets(
                sample["boxes"],
                sample["labels"],
                self.num_classes,
                out_size,
                (in_h, in_w),
                self.min_overlap,
                self.radius_formula,
            )  # type: ignore[arg-type]
            for sample in samples
        ]
        return {
            "images": images,
            "targets": collate_targets(targets),
            "boxes": [sample["boxes"] for sample in samples],
            "labels": [sample["labels"] for sample in samples],
        }


class EvalCollate:
    """Pads images at the bottom/right to the batch's largest size, rounded up to ``size_divisor``."""

    def __init__(self, size_divisor: int = 1) -> None:
        self.size_divisor = max(int(size_divisor), 1)

    def __call__(self, samples: Sequence[DetectionSample]) -> dict[str, Any]:
        divisor = self.size_divisor
        height = max(sample["image"].shape[1] for sample in samples)
        width = max(sample["image"].shape[2] for sample in samples)
        height, width = -(-height // divisor) * divisor, -(-width // divisor) * divisor
        images = torch.zeros(len(samples), 3, height, width)
        for index, sample in enumerate(samples):
            _, h, w = sample["image"].shape
            images[index, :, :h, :w] = sample["image"]
        return {
            "images": images,
            "image_ids": torch.tensor([int(sample["image_id"]) for sample in samples]),
            "original_sizes": torch.tensor(
                [sample["original_size"] for sample in samples], dtype=torch.float32
            ),
            "resize_factors": torch.tensor([float(sample.get("resize_factor", 1.0)) for sample in samples]),
            "file_names": [str(sample["file_name"]) for sample in samples],
        }
