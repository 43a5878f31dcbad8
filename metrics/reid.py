"""Person re-identification metrics (Market-1501 / DukeMTMC protocol, used by MCNL, arXiv:1909.10848 Sec. 4.1).

* :func:`reid_cmc_map`: CMC curve and non-interpolated mAP of a query x gallery distance matrix, vectorised over
  queries and chunked, so a Market-sized evaluation takes about a second on a CPU.
* :func:`match_ranks` / :func:`exact_match_ranks`: where each correct match lands in a query's ranked gallery, the
  core of :func:`reid_cmc_map`. CMC and AP need only the rank of every correct match among the kept gallery items
  (kept: not the query's identity AND camera), not a full sort of each row: the few gallery items of the query's
  identity come from a per-identity table (:class:`IdentityTable`), are sorted among themselves, every gallery item
  is placed among them with one binary search, and a histogram with a cumulative sum gives the ranks. Ranking
  follows a stable sort of the float32 distances (equal distances keep gallery order); rows where a non-match's
  distance equals a match's exactly go through :func:`exact_match_ranks`, with distinct (distance, gallery
  position) integer keys.
* :class:`ReIDEvaluator`: a torchmetrics :class:`~torchmetrics.Metric` whose ``cat`` states hold every evaluated
  image's L2-normalised feature, identity, camera, query flag and dataset index; ``compute`` drops duplicates by
  dataset index (DDP padding, or ranks that all evaluated the whole set), ranks the gallery by Euclidean distance
  and applies :func:`reid_cmc_map`.

Importable without Lightning.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

REPORTED_RANKS = (1, 5, 10)
KEY_PAD = torch.iinfo(torch.int64).max


class IdentityTable:
    """Gallery positions of every identity, padded with -1: ``table[row]`` for the identity ``identities[row]``."""

    def __init__(self, gallery_ids: torch.Tensor) -> None:
        order = torch.argsort(gallery_ids, stable=True)
        self.identities, counts = torch.unique_consecutive(gallery_ids[order], return_counts=True)
        starts = torch.cumsum(counts, dim=0) - counts
        group = torch.repeat_interleave(torch.arange(len(counts)), counts)
        within = torch.arange(len(order)) - starts[group]
        self.table = torch.full((len(counts), int(counts.max()) if len(counts) else 0), -1, dtype=torch.int64)
        self.table[group, within] = order

    def positions(self, query_ids: torch.Tensor) -> torch.Tensor:
        """``(num_query, width)`` gallery positions of each query's identity (-1 padding / absent identity)."""
        row = torch.searchsorted(self.identities, query_ids).clamp(max=max(len(self.identities) - 1, 0))
        present = self.identities[row] == query_ids
        return self.table[row].masked_fill(~present[:, None], -1)


def _keys(distances: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Distinct int64 keys ordering like a stable sort: monotonic float32 bits high, gallery position low."""
    bits = distances.float().contiguous().view(torch.int32)
    monotonic = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return (monotonic.to(torch.int64) << 32) | positions


def exact_match_ranks(distances: torch.Tensor, query_ids: torch.Tensor, query_cameras: torch.Tensor,
                      gallery_ids: torch.Tensor, gallery_cameras: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ranks, num_matches)``: 1-based ranks (padded with 0) of each row's matches, via distinct keys."""
    same_id = gallery_ids[None, :] == query_ids[:, None]
    kept = ~(same_id & (gallery_cameras[None, :] == query_cameras[:, None]))
    matches = same_id & kept
    num_matches = matches.sum(dim=1)
    most = max(int(num_matches.max()) if len(num_matches) else 0, 1)
    keys = _keys(distances, torch.arange(distances.shape[1])[None, :])
    match_keys = keys.masked_fill(~matches, KEY_PAD).topk(most, dim=1, largest=False, sorted=True).values
    bucket = torch.searchsorted(match_keys, keys)  # matches ranked before each item (keys are distinct)
    counts = torch.zeros(len(keys), most + 1, dtype=torch.int64).scatter_add_(1, bucket, kept.to(torch.int64))
    ranks = torch.cumsum(counts, dim=1)[:, :most]
    real = torch.arange(most)[None, :] < num_matches[:, None]
    return ranks * real, num_matches


def match_ranks(distances: torch.Tensor, query_ids: torch.Tensor, query_cameras: torch.Tensor,
                gallery_ids: torch.Tensor, gallery_cameras: torch.Tensor,
                table: IdentityTable) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ranks, num_matches)`` like :func:`exact_match_ranks`, touching each gallery row with one binary search."""
    distances = distances.float()
    candidates = table.positions(query_ids)                                  # (Q, L), -1 padded
    valid = candidates >= 0
    safe = candidates.clamp(min=0)
    same_camera = gallery_cameras[safe] == query_cameras[:, None]
    is_match = valid & ~same_camera  # the rest of the valid candidates are dropped (same camera)
    num_matches = is_match.sum(dim=1)
    most = max(int(num_matches.max()) if len(num_matches) else 0, 1)
    candidate_distances = distances.gather(1, safe)
    # the matches in stable-sort order (distance, then gallery position); padding sorts last (+inf)
    match_keys = _keys(candidate_distances, safe).masked_fill(~is_match, KEY_PAD)
    order = match_keys.topk(min(most, match_keys.shape[1]), dim=1, largest=False, sorted=True).indices
    sorted_distances = candidate_distances.gather(1, order).masked_fill(~is_match.gather(1, order), float("inf"))
    # every gallery item: how many matches have a strictly smaller distance
    bucket = torch.searchsorted(sorted_distances, distances)                # (Q, G)
    counts = torch.zeros(len(distances), most + 1, dtype=torch.int64)
    counts.scatter_add_(1, bucket, torch.ones_like(bucket))
    # take out the query identity's own items (matches and dropped same-camera ones): only non-matches stay
    own_bucket = torch.searchsorted(sorted_distances, candidate_distances)
    counts.scatter_add_(1, own_bucket, -valid.to(torch.int64))
    ranks = torch.cumsum(counts, dim=1)[:, :most] + torch.arange(1, most + 1)[None, :]
    # exact ties between a non-match item and a match distance need the gallery position: exact path
    tied = (bucket < most) & (sorted_distances.gather(1, bucket.clamp(max=most - 1)) == distances)
    own_tied = (own_bucket < most) & (sorted_distances.gather(1, own_bucket.clamp(max=most - 1)) == candidate_distances)
    needs_exact = tied.sum(dim=1) != (own_tied & valid).sum(dim=1)
    real = torch.arange(most)[None, :] < num_matches[:, None]
    ranks = ranks * real
    if bool(needs_exact.any()):
        rows = needs_exact.nonzero().squeeze(1)
        exact, _ = exact_match_ranks(distances[rows], query_ids[rows], query_cameras[rows], gallery_ids, gallery_cameras)
        ranks[rows] = torch.nn.functional.pad(exact, (0, most - exact.shape[1]))
    return ranks, num_matches


# ---------------------------------------------------------------------------------------------- CMC / mAP
_REID_QUERY_CHUNK = 512  # queries ranked at once: 512 x 15,913 gallery items is ~65 MB of int64 per array


def as_cpu_tensor(values: object, name: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``values`` (a NumPy array, a sequence or a tensor) as a CPU tensor of ``dtype``; a scalar is refused (this
    module's and :mod:`metrics.sbir`'s functions take arrays)."""
    tensor = values.detach() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    tensor = tensor.cpu()
    if dtype is not None:
        tensor = tensor.to(dtype)
    if tensor.dim() == 0:
        raise ValueError(f"{name} must be an array, got a scalar.")
    return tensor


def reid_cmc_map(
    distances: object,
    query_ids: object,
    gallery_ids: object,
    query_cameras: object,
    gallery_cameras: object,
    max_rank: int = 50,
) -> tuple[np.ndarray, float]:
    """CMC curve and mean average precision of person re-identification (Market-1501 / DukeMTMC protocol).

    The protocol of the re-ID benchmarks (Zheng et al., Market-1501; used by MCNL, arXiv:1909.10848 Sec. 4.1,
    and torchreid's ``evaluate_rank``): for each query the gallery is ranked by increasing distance (compared
    in float32; ties keep gallery order), gallery items with the query's identity AND camera are dropped, and a query left
    with no correct match is skipped (all such queries are counted in one warning). CMC@k is the fraction of
    the remaining queries whose first correct match is within the first k; AP is non-interpolated
    (mean of the precision at every correct match).

    Args:
        distances: ``(num_query, num_gallery)`` distances (numpy array or tensor, smaller = more similar).
        query_ids, gallery_ids: identity labels (integers) of the queries and of the gallery items.
        query_cameras, gallery_cameras: camera labels of the queries and of the gallery items.
        max_rank: length of the returned CMC curve.

    Returns:
        ``(cmc, mean_ap)``: ``cmc`` a float64 array of length ``max_rank`` (``cmc[k - 1]`` = rank-k accuracy,
        in [0, 1]) and ``mean_ap`` a float in [0, 1].

    Raises:
        ValueError: mismatched shapes, ``max_rank < 1``, or no query with a correct match at all.

    No full sort: only the correct matches are ranked (:func:`match_ranks`): every gallery item is placed among the
    query's few sorted match distances by a binary search, and a cumulative count gives each match's rank among the
    kept items, which is all CMC and AP need.
    """
    distance = as_cpu_tensor(distances, "distances")
    if distance.dim() != 2:
        raise ValueError(f"distances must be (num_query, num_gallery); got shape {tuple(distance.shape)}.")
    num_query, num_gallery = distance.shape
    q_ids = as_cpu_tensor(query_ids, "query_ids", torch.int64)
    g_ids = as_cpu_tensor(gallery_ids, "gallery_ids", torch.int64)
    q_cams = as_cpu_tensor(query_cameras, "query_cameras", torch.int64)
    g_cams = as_cpu_tensor(gallery_cameras, "gallery_cameras", torch.int64)
    if q_ids.shape != (num_query,) or q_cams.shape != (num_query,):
        raise ValueError(f"query_ids and query_cameras need {num_query} entries (rows of distances); got "
                         f"{tuple(q_ids.shape)} and {tuple(q_cams.shape)}.")
    if g_ids.shape != (num_gallery,) or g_cams.shape != (num_gallery,):
        raise ValueError(f"gallery_ids and gallery_cameras need {num_gallery} entries (columns of distances); "
                         f"got {tuple(g_ids.shape)} and {tuple(g_cams.shape)}.")
    if max_rank < 1:
        raise ValueError(f"max_rank={max_rank}: must be at least 1.")

    hits = torch.zeros(max_rank, dtype=torch.float64)
    ap_sum, answered = 0.0, 0
    table = IdentityTable(g_ids)
    for start in range(0, num_query, _REID_QUERY_CHUNK):
        stop = min(start + _REID_QUERY_CHUNK, num_query)
        ranks, num_matches = match_ranks(distance[start:stop], q_ids[start:stop], q_cams[start:stop], g_ids, g_cams,
                                         table)
        has_match = num_matches > 0
        if not bool(has_match.any()):
            continue
        ranks, num_matches = ranks[has_match], num_matches[has_match]
        hits += torch.bincount((ranks[:, 0] - 1).clamp(max=max_rank), minlength=max_rank + 1)[:max_rank].double()
        found = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64)[None, :]
        precision = torch.where(ranks > 0, found / ranks.clamp(min=1).double(), 0.0)
        ap_sum += float((precision.sum(dim=1) / num_matches.double()).sum())
        answered += int(has_match.sum())
    skipped = num_query - answered
    if answered == 0:
        raise ValueError(f"None of the {num_query} queries has a correct match in the gallery (after dropping "
                         "same-identity same-camera items): check the query and gallery labels.")
    if skipped:
        warnings.warn(f"{skipped} of {num_query} queries have no correct match in the gallery (identity absent, "
                      "or seen only by the query's camera) and were skipped by reid_cmc_map.", stacklevel=2)
    cmc = (torch.cumsum(hits, dim=0) / answered).numpy()
    return cmc, ap_sum / answered


# -------------------------------------------------------------------------------------------- the Metric
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


__all__ = ["REPORTED_RANKS", "IdentityTable", "ReIDEvaluator", "as_cpu_tensor", "exact_match_ranks", "match_ranks",
           "reid_cmc_map"]
