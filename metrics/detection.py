"""Detection metrics: COCO box AP (the official protocol, pycocotools' ``COCOeval``) and COCO result records.

:func:`coco_results` turns decoded detections into the records of the COCO results format
(``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``) with the dataset's original category ids;
:func:`evaluate_coco` scores such records against a ground-truth ``COCO`` object and returns AP, AP50, AP75,
APs, APm and APl (the first six numbers of ``COCOeval.stats``), restricted to the evaluated images.
:class:`CocoBoxAP` is that evaluation as a torchmetrics ``Metric``: its states (detections and evaluated images
as tensors) are gathered across processes and reset by torchmetrics, so a module only updates and computes it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

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
        record = _record(image_id, category_ids[int(label)], box, score)
        if with_keypoints:
            record["keypoints"] = {
                "top_left": [round(x1, 2), round(y1, 2)],
                "bottom_right": [round(x2, 2), round(y2, 2)],
                "center": [round(center[0], 2), round(center[1], 2)],
            }
        records.append(record)
    return records


def _record(image_id: int, category_id: int, box: Sequence[float], score: float) -> dict[str, Any]:
    """One COCO result record; ``box`` is ``[x1, y1, x2, y2]`` in pixels."""
    x1, y1, x2, y2 = box
    return {
        "image_id": int(image_id),
        "category_id": int(category_id),
        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
        "score": round(float(score), 5),
    }


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


class CocoBoxAP(Metric):
    """COCO box AP (:data:`COCO_METRICS`) of decoded detections, as a torchmetrics ``Metric``.

    ``update(detections, image_ids)`` takes one batch (``Detections`` per image, original-image pixels);
    ``compute()`` scores everything seen since the last reset against :attr:`ground_truth` (a pycocotools
    ``COCO``, set before computing) with :func:`evaluate_coco`. Class index ``k`` is category
    ``category_ids[k]`` of the dataset. An image evaluated by several processes (a distributed sampler pads
    the last batch with repeated images) counts once: only the lowest rank's copy of its detections is kept.

    Args:
        category_ids: the dataset's original category id of every class index.
    """

    full_state_update = False

    def __init__(self, category_ids: Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.category_ids = list(category_ids) if category_ids is not None else None
        self.ground_truth: Any = None
        for name in ("image_ids", "image_ranks", "boxes", "scores", "labels", "box_image_ids", "box_ranks"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, detections: Sequence[Detections], image_ids: torch.Tensor | Sequence[int]) -> None:
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
        ids = torch.as_tensor(image_ids, dtype=torch.long, device=self.device).reshape(-1)
        self.image_ids.append(ids)
        self.image_ranks.append(torch.full_like(ids, rank))
        for image_id, found in zip(ids.tolist(), detections, strict=True):
            count = len(found.scores)
            self.boxes.append(found.boxes.detach().float().reshape(count, 4).to(self.device))
            self.scores.append(found.scores.detach().float().reshape(count).to(self.device))
            self.labels.append(found.labels.detach().long().reshape(count).to(self.device))
            self.box_image_ids.append(torch.full((count,), image_id, dtype=torch.long, device=self.device))
            self.box_ranks.append(torch.full((count,), rank, dtype=torch.long, device=self.device))

    def compute(self) -> dict[str, torch.Tensor]:
        if self.ground_truth is None:
            raise ValueError("CocoBoxAP.ground_truth is not set: give it the COCO ground truth before computing.")
        image_ids, image_ranks = _cat(self.image_ids), _cat(self.image_ranks)
        first_rank: dict[int, int] = {}
        for image_id, rank in zip(image_ids.tolist(), image_ranks.tolist(), strict=True):
            first_rank[image_id] = min(rank, first_rank.get(image_id, rank))
        records = []
        rows = zip(_cat(self.box_image_ids).tolist(), _cat(self.box_ranks).tolist(), _cat(self.boxes).tolist(),
                   _cat(self.scores).tolist(), _cat(self.labels).tolist(), strict=True)
        for image_id, rank, box, score, label in rows:
            if rank == first_rank[image_id]:
                category = self.category_ids[label] if self.category_ids is not None else label + 1
                records.append(_record(image_id, category, box, score))
        values = evaluate_coco(self.ground_truth, records, first_rank.keys())
        return {name: torch.tensor(value, dtype=torch.float32) for name, value in values.items()}


def _cat(state: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    if isinstance(state, list) and not state:
        return torch.zeros(0)
    return dim_zero_cat(state)
