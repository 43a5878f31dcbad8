"""Fidelity: heatmaps built from the ground truth decode to boxes that score COCO AP >= 0.99.

The "network" below returns, for each image of a batch (and for its mirror image when flip testing), logits
of the training targets (Gaussian heatmaps with 1 at every keypoint), the exact offsets, and embeddings equal
to the object's index at its two corners. The decoder (pairing, central-region rule, soft-NMS), the loader
and the COCO evaluator must then agree: every object found, nothing else scoring high.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.shapes import ShapesDataModule
from metrics.detection import coco_results, evaluate_coco
from networks.detection.decoding import CenterNetDecoder, DecoderSettings
from networks.detection.targets import build_targets

BACKGROUND_EMBEDDING = 1000.0


def perfect_outputs(
    boxes: list[torch.Tensor], labels: list[torch.Tensor], num_classes: int, input_size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Raw maps that decode exactly to ``boxes`` (input pixels)."""
    out_h, out_w = -(-input_size[0] // 4), -(-input_size[1] // 4)
    maps: dict[str, list[torch.Tensor]] = {}
    for image_boxes, image_labels in zip(boxes, labels, strict=True):
        t = build_targets(image_boxes, image_labels, num_classes, (out_h, out_w), input_size)
        image_maps: dict[str, torch.Tensor] = {}
        for kind in ("tl", "br", "ct"):
            heat = getattr(t, f"{kind}_heatmap").clamp(1e-9, 1 - 1e-9)
            image_maps[f"{kind}_heatmap"] = torch.log(heat / (1 - heat))
            offsets = torch.zeros(2, out_h * out_w)
            offsets[:, getattr(t, f"{kind}_index")] = getattr(t, f"{kind}_offset").T
            image_maps[f"{kind}_offset"] = offsets.reshape(2, out_h, out_w)
        for kind in ("tl", "br"):
            embedding = torch.full((out_h * out_w,), BACKGROUND_EMBEDDING)
            embedding[getattr(t, f"{kind}_index")] = torch.arange(len(image_boxes), dtype=torch.float32)
            image_maps[f"{kind}_embedding"] = embedding.reshape(1, out_h, out_w)
        for name, value in image_maps.items():
            maps.setdefault(name, []).append(value)
    return {name: torch.stack(values) for name, values in maps.items()}


@pytest.mark.parametrize("flip", [False, True])
def test_perfect_keypoints_score_coco_ap_above_0_99(tmp_path: Path, flip: bool) -> None:
    datamodule = ShapesDataModule(
        str(tmp_path / "shapes"), num_train=2, num_val=40, eval_batch_size=8, max_objects=6, generator_seed=3
    )
    datamodule.prepare_data()
    datamodule.setup("validate")
    dataset = datamodule._dataset("val")
    row_of = {image_id: row for row, image_id in enumerate(dataset.image_ids)}
    decoder = CenterNetDecoder(DecoderSettings(flip=flip))
    records, image_ids = [], []
    for batch in datamodule.val_dataloader():
        rows = [row_of[int(i)] for i in batch["image_ids"]]
        boxes = [torch.from_numpy(dataset.boxes[row]) for row in rows]
        labels = [torch.from_numpy(dataset.labels[row]) for row in rows]
        height, width = batch["images"].shape[-2:]

        def network(images: torch.Tensor, boxes=boxes, labels=labels, width=width, height=height) -> dict:
            all_boxes, all_labels = list(boxes), list(labels)
            if len(images) == 2 * len(boxes):  # the mirrored half of flip testing
                mirrored = [
                    b[:, [2, 1, 0, 3]] * torch.tensor([-1.0, 1.0, -1.0, 1.0])
                    + torch.tensor([width, 0, width, 0])
                    for b in boxes
                ]
                all_boxes, all_labels = all_boxes + mirrored, all_labels + list(labels)
            return perfect_outputs(all_boxes, all_labels, 3, (height, width))

        detections = decoder(network, batch["images"], batch["resize_factors"], batch["original_sizes"])
        for image_detections, image_id in zip(detections, batch["image_ids"].tolist(), strict=True):
            records += coco_results(image_detections, image_id, [1, 2, 3])
            image_ids.append(image_id)
    assert sum(len(b) for b in dataset.boxes) > 60
    metrics = evaluate_coco(datamodule.ground_truth("val"), records, image_ids)
    assert metrics["AP"] >= 0.99, metrics
    assert metrics["AP50"] >= 0.99, metrics


def test_coco_box_ap_imports_without_lightning() -> None:
    # metrics/ is usable from scripts and notebooks that do not train: no Lightning, no Hydra.
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT

    code = ("import sys, metrics.detection; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pytorch_lightning', 'lightning', 'hydra'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
