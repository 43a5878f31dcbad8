"""CenterNet runs resume exactly with loader workers (epoch-seeded loaders), and COCO AP is a Metric."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.writers.coco import write_tiny_coco
from metrics.detection import CocoBoxAP, coco_results, evaluate_coco
from networks.detection.decoding import Detections
from tests.helpers import KeyboardInterruptSimulation
from visionsuite.pipeline import run_job

# The shapes demo at test size: 32 training images in batches of 16 (2 iterations per epoch), validation (4
# images, no flip) at the end of every epoch, one loader worker.
TINY_SHAPES = [
    "experiment=centernet_shapes",
    "data.num_train=32",
    "data.num_val=4",
    "data.eval_batch_size=4",
    "data.num_workers=1",
    "model.decoder.flip=false",
    "model.num_visualized=0",
    "trainer.max_steps=6",
    "trainer.val_check_interval=2",
    "test_after_fit=false",
]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_a_killed_centernet_run_with_workers_resumes_to_the_same_weights(make_config, tmp_path: Path,
                                                                           one_torch_thread: None) -> None:
    run_job(make_config(*TINY_SHAPES, output_dir=tmp_path / "straight"))
    with pytest.raises(KeyboardInterruptSimulation):
        run_job(make_config(*TINY_SHAPES, "+callbacks.stop._target_=tests.helpers.StopAfterEpochs",
                            "+callbacks.stop.epochs=2", output_dir=tmp_path / "resumed"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 4  # killed after 2 epochs
    run_job(make_config(*TINY_SHAPES, f"ckpt_path={last}", output_dir=tmp_path / "resumed"))

    straight = _weights(tmp_path / "straight" / "checkpoints" / "last.ckpt")
    resumed = _weights(last)
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def _detections(boxes: list[list[float]], scores: list[float], labels: list[int]) -> Detections:
    box_tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    centers = (box_tensor[:, :2] + box_tensor[:, 2:]) / 2
    return Detections(box_tensor, torch.tensor(scores), torch.tensor(labels, dtype=torch.long), centers)


def test_coco_metric_equals_the_evaluation_of_the_records(tmp_path: Path) -> None:
    from datamodules.coco import annotation_path, coco_from_dict, read_annotation_file

    root = write_tiny_coco(tmp_path / "coco", num_images=3, category_ids=(1, 3, 7))
    path = annotation_path(root, "val")
    ground_truth = coco_from_dict(read_annotation_file(path))
    annotations = ground_truth.dataset["annotations"]
    category_ids = [1, 3, 7]
    per_image: dict[int, Detections] = {}
    for image in ground_truth.dataset["images"]:
        found = [a for a in annotations if a["image_id"] == image["id"]]
        boxes = [[a["bbox"][0] + 1, a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                 for a in found] + [[0.0, 0.0, 5.0, 5.0]]
        labels = [category_ids.index(a["category_id"]) for a in found] + [0]
        per_image[image["id"]] = _detections(boxes, [0.9] * len(found) + [0.3], labels)

    metric = CocoBoxAP(category_ids)
    metric.ground_truth = ground_truth
    ids = sorted(per_image)
    metric.update([per_image[i] for i in ids[:2]], torch.tensor(ids[:2]))
    metric.update([per_image[ids[2]]], torch.tensor(ids[2:]))
    values = metric.compute()

    records = [record for i in ids for record in coco_results(per_image[i], i, category_ids)]
    expected = evaluate_coco(ground_truth, records, ids)
    assert {name: float(value) for name, value in values.items()} == pytest.approx(expected)
    assert 0.0 < expected["AP"] < 1.0
    metric.reset()
    metric.update([], torch.tensor([], dtype=torch.long))
    assert float(metric.compute()["AP"]) == 0.0  # no detections: zeros, as evaluate_coco
