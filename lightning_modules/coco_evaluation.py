"""COCO box evaluation (the official protocol, pycocotools' ``COCOeval``) and COCO result records.

:func:`coco_results` turns decoded detections into the records of the COCO results format
(``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``) with the dataset's original category ids;
:func:`evaluate_coco` scores such records against a ground-truth ``COCO`` object and returns AP, AP50, AP75,
APs, APm and APl (the first six numbers of ``COCOeval.stats``), restricted to the evaluated images.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from networks.detection.decoding import Detections

#: Names of ``COCOeval.stats[0:6]``.
COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def coco_results(
    detections: Detections, image_id: int, category_ids: Sequence[int], with_keypoints: bool = False
) -> list[dict[str, Any]]:
    """COCO result records of one image; ``category_ids[k]`` is the original id of class index ``k``.

    With ``with_keypoints`` each record also carries ``"keypoints": {"top_left", "bottom_right", "center"}``
    (pixels), which COCO tools ignore.
    """
    boxes = detections.boxes.detach().cpu().tolist()
    scores = detections.scores.detach().cpu().tolist()
    labels = detections.labels.detach().cpu().tolist()
    centers = detections.centers.detach().cpu().tolist()
    records = []
    for box, score, label, center in zip(boxes, scores, labels, centers, strict=True):
        x1, y1, x2, y2 = box
        record: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": int(category_ids[int(label)]),
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": round(float(score), 5),
        }
        if with_keypoints:
            record["keypoints"] = {
                "top_left": [round(x1, 2), round(y1, 2)],
                "bottom_right": [round(x2, 2), round(y2, 2)],
                "center": [round(center[0], 2), round(center[1], 2)],
            }
        records.append(record)
    return records


def evaluate_coco(
    ground_truth: Any, results: Sequence[Mapping[str, Any]], image_ids: Iterable[int]
) -> dict[str, float]:
    """COCO box AP of ``results`` on the images ``image_ids`` of ``ground_truth`` (a pycocotools ``COCO``).

    Returns ``{name: value}`` for :data:`COCO_METRICS` (``-1`` where COCO has no ground truth, e.g. APl on a
    dataset without large objects; 0 for every metric when there are no detections).
    """
    from pycocotools.cocoeval import COCOeval

    image_ids = sorted({int(i) for i in image_ids})
    if not results:
        return dict.fromkeys(COCO_METRICS, 0.0)
    records = [{key: value for key, value in record.items() if key != "keypoints"} for record in results]
    with contextlib.redirect_stdout(io.StringIO()):
        detections = ground_truth.loadRes(records)
        evaluator = COCOeval(ground_truth, detections, iouType="bbox")
        evaluator.params.imgIds = image_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(COCO_METRICS, evaluator.stats[:6], strict=True)}


def gather_results(per_image: dict[int, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """``{image_id: records}`` of all processes (unchanged when not distributed).

    An image seen by several processes (a distributed sampler pads the last batch with repeated images)
    keeps one copy of its records, so padding never adds duplicate detections.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return per_image
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, per_image)
    merged: dict[int, list[dict[str, Any]]] = {}
    for part in gathered:
        for image_id, records in part.items():
            merged.setdefault(image_id, records)
    return merged
