"""Pictures of detections: each box with its class and score, and its three keypoints (CenterNet's triplet).

Top-left and bottom-right corners are drawn as filled squares, the center keypoint that validated the box as
a filled circle, all in the colour of the class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from networks.detection.decoding import Detections

_PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
)  # fmt: skip


def class_colour(label: int) -> tuple[int, int, int]:
    return _PALETTE[int(label) % len(_PALETTE)]


def tensor_to_image(
    image: torch.Tensor, mean: Sequence[float], std: Sequence[float], size: Sequence[int] | None = None
) -> Image.Image:
    """Undo the normalisation of a ``(3, H, W)`` tensor; crop the padding to ``size = (h, w)`` when given."""
    array = image.detach().cpu().float().numpy().transpose(1, 2, 0)
    array = array * np.asarray(std, dtype=np.float32) + np.asarray(mean, dtype=np.float32)
    if size is not None:
        array = array[: int(size[0]), : int(size[1])]
    return Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8))


def draw_detections(
    image: Image.Image, detections: Detections, class_names: Sequence[str], score_threshold: float = 0.3
) -> Image.Image:
    """A copy of ``image`` with the detections scoring at least ``score_threshold`` drawn on it."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    radius = max(2, round(min(canvas.size) / 120))
    keep = detections.scores >= score_threshold
    boxes = detections.boxes[keep].detach().cpu().tolist()
    centers = detections.centers[keep].detach().cpu().tolist()
    labels = detections.labels[keep].detach().cpu().tolist()
    scores = detections.scores[keep].detach().cpu().tolist()
    for box, center, label, score in sorted(
        zip(boxes, centers, labels, scores, strict=True), key=lambda d: d[3]
    ):
        colour = class_colour(label)
        x1, y1, x2, y2 = box
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=max(1, radius // 2))
        for x, y in ((x1, y1), (x2, y2)):
            draw.rectangle(
                [x - radius, y - radius, x + radius, y + radius], fill=colour, outline=(255, 255, 255)
            )
        cx, cy = center
        draw.ellipse(
            [cx - radius, cy - radius, cx + radius, cy + radius], fill=colour, outline=(255, 255, 255)
        )
        name = class_names[label] if 0 <= label < len(class_names) else str(label)
        text = f"{name} {score:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        text_y = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1 + 1
        draw.rectangle([x1, text_y, x1 + (right - left) + 2, text_y + (bottom - top) + 2], fill=colour)
        draw.text((x1 + 1, text_y), text, fill=(255, 255, 255))
    return canvas


def image_grid(images: Sequence[Image.Image], columns: int = 4, padding: int = 2) -> Image.Image:
    """Tile images (each placed at its own size) into one picture, ``columns`` per row."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    cell_w = max(image.width for image in images) + padding
    cell_h = max(image.height for image in images) + padding
    grid = Image.new("RGB", (columns * cell_w + padding, rows * cell_h + padding), (255, 255, 255))
    for index, image in enumerate(images):
        grid.paste(image, (padding + (index % columns) * cell_w, padding + (index // columns) * cell_h))
    return grid
