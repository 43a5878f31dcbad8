"""The re-ID evaluator: features of query and gallery images in, CMC / mAP and the top-ranked gallery out.

A torchmetrics :class:`~torchmetrics.Metric` whose ``cat`` states hold every evaluated image's
L2-normalised feature, identity, camera, query flag and dataset index; ``compute`` drops duplicates by
dataset index (DDP padding, or ranks that all evaluated the whole set), ranks the gallery by Euclidean
distance and applies :func:`lightning_modules.retrieval_metrics.reid_cmc_map` (MCNL, arXiv:1909.10848 Sec. 4.1).
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_modules.retrieval_metrics import reid_cmc_map

REPORTED_RANKS = (1, 5, 10)


class ReIDEvaluator(Metric):
    """Accumulates ``update(features, identities, cameras, is_query, indices)``; ``compute`` gives the scores.

    Args:
        max_rank: length of the CMC curve.
        top_k: gallery items kept per query in :attr:`last_ranking` (for the retrieval pictures).
    """

    full_state_update = False

    def __init__(self, max_rank: int = 50, top_k: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_rank, self.top_k = int(max_rank), int(top_k)
        for name in ("features", "identities", "cameras", "is_query", "indices"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.last_ranking: dict[str, torch.Tensor] | None = None

    def update(self, features: torch.Tensor, identities: torch.Tensor, cameras: torch.Tensor,
               is_query: torch.Tensor, indices: torch.Tensor) -> None:
        self.features.append(features.detach().float())
        self.identities.append(identities.long())
        self.cameras.append(cameras.long())
        self.is_query.append(is_query.bool())
        self.indices.append(indices.long())

    def _collected(self) -> dict[str, torch.Tensor]:
        values = {name: dim_zero_cat(getattr(self, name))
                  for name in ("features", "identities", "cameras", "is_query", "indices")}
        unique, first = _first_occurrences(values["indices"])
        return {name: value[first] for name, value in values.items()} | {"indices": unique}

    def compute(self) -> dict[str, torch.Tensor]:
        values = self._collected()
        query, gallery = values["is_query"], ~values["is_query"]
        query_features, gallery_features = values["features"][query], values["features"][gallery]
        distances = torch.cdist(query_features, gallery_features)
        q_ids, g_ids = values["identities"][query], values["identities"][gallery]
        q_cams, g_cams = values["cameras"][query], values["cameras"][gallery]
        dropped = (q_ids[:, None] == g_ids[None, :]) & (q_cams[:, None] == g_cams[None, :])
        top_k = min(self.top_k, int(gallery.sum()))
        order = distances.masked_fill(dropped, float("inf")).topk(top_k, dim=1, largest=False).indices
        self.last_ranking = {  # what the protocol ranks: same identity + same camera items left out
            "query_indices": values["indices"][query].cpu(),
            "gallery_indices": values["indices"][gallery][order].cpu(),
            "correct": (g_ids[order] == q_ids[:, None]).cpu(),
        }
        cmc, mean_ap = reid_cmc_map(distances, q_ids, g_ids, q_cams, g_cams, self.max_rank)
        scores = {f"rank{rank}": torch.tensor(float(cmc[rank - 1])) for rank in REPORTED_RANKS if rank <= len(cmc)}
        scores["mAP"] = torch.tensor(float(mean_ap))
        return scores


def _first_occurrences(indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique values of ``indices`` and the position of each one's first occurrence."""
    unique, inverse = torch.unique(indices, sorted=True, return_inverse=True)
    positions = torch.arange(len(indices), device=indices.device)
    first = torch.full((len(unique),), len(indices), dtype=torch.long, device=indices.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first


__all__ = ["REPORTED_RANKS", "ReIDEvaluator"]
