"""Retrieval metrics shared by person re-identification (MCNL) and sketch-based image retrieval (SAKE).

Both take a query x gallery distance matrix (numpy array or tensor, smaller = more similar) and the labels
of both sides, and are vectorised over queries and chunked so that full benchmark-sized evaluations take
seconds on a CPU. Each function's docstring states its protocol.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------- re-ID (MCNL)
import warnings as _warnings  # noqa: E402

import numpy as _np  # noqa: E402
import torch as _torch  # noqa: E402

_REID_QUERY_CHUNK = 512  # queries ranked at once: 512 x 15,913 gallery items is ~65 MB of int64 per array


def _as_tensor(values: object, name: str, dtype: _torch.dtype | None = None) -> _torch.Tensor:
    tensor = values.detach() if isinstance(values, _torch.Tensor) else _torch.as_tensor(_np.asarray(values))
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
) -> tuple[_np.ndarray, float]:
    """CMC curve and mean average precision of person re-identification (Market-1501 / DukeMTMC protocol).

    The protocol of the re-ID benchmarks (Zheng et al., Market-1501; used by MCNL, arXiv:1909.10848 Sec. 4.1,
    and torchreid's ``evaluate_rank``): for each query the gallery is ranked by increasing distance (ties
    keep gallery order), gallery items with the query's identity AND camera are dropped, and a query left
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
    """
    distance = _as_tensor(distances, "distances")
    if distance.dim() != 2:
        raise ValueError(f"distances must be (num_query, num_gallery); got shape {tuple(distance.shape)}.")
    num_query, num_gallery = distance.shape
    q_ids, g_ids = _as_tensor(query_ids, "query_ids", _torch.int64), _as_tensor(gallery_ids, "gallery_ids", _torch.int64)
    q_cams = _as_tensor(query_cameras, "query_cameras", _torch.int64)
    g_cams = _as_tensor(gallery_cameras, "gallery_cameras", _torch.int64)
    if q_ids.shape != (num_query,) or q_cams.shape != (num_query,):
        raise ValueError(f"query_ids and query_cameras need {num_query} entries (rows of distances); got "
                         f"{tuple(q_ids.shape)} and {tuple(q_cams.shape)}.")
    if g_ids.shape != (num_gallery,) or g_cams.shape != (num_gallery,):
        raise ValueError(f"gallery_ids and gallery_cameras need {num_gallery} entries (columns of distances); "
                         f"got {tuple(g_ids.shape)} and {tuple(g_cams.shape)}.")
    if max_rank < 1:
        raise ValueError(f"max_rank={max_rank}: must be at least 1.")

    hits = _torch.zeros(max_rank, dtype=_torch.float64)
    ap_sum, answered = 0.0, 0
    for start in range(0, num_query, _REID_QUERY_CHUNK):
        stop = min(start + _REID_QUERY_CHUNK, num_query)
        order = _torch.sort(distance[start:stop].float(), dim=1, stable=True).indices
        ranked_ids, ranked_cams = g_ids[order], g_cams[order]
        same_id = ranked_ids == q_ids[start:stop, None]
        kept = ~(same_id & (ranked_cams == q_cams[start:stop, None]))
        matches = same_id & kept
        num_matches = matches.sum(dim=1)
        has_match = num_matches > 0
        if not bool(has_match.any()):
            continue
        matches, kept, num_matches = matches[has_match], kept[has_match], num_matches[has_match]
        position = _torch.cumsum(kept, dim=1, dtype=_torch.int32)  # 1-based rank among the kept items
        first = _torch.argmax(matches.to(_torch.uint8), dim=1)
        first_rank = position.gather(1, first[:, None]).squeeze(1) - 1  # 0-based
        hits += _torch.bincount(first_rank.clamp(max=max_rank).long(), minlength=max_rank + 1)[:max_rank].double()
        correct_so_far = _torch.cumsum(matches, dim=1, dtype=_torch.int32)
        precision = _torch.where(matches, correct_so_far.double() / position.clamp(min=1).double(), 0.0)
        ap_sum += float((precision.sum(dim=1) / num_matches.double()).sum())
        answered += int(has_match.sum())
    skipped = num_query - answered
    if answered == 0:
        raise ValueError(f"None of the {num_query} queries has a correct match in the gallery (after dropping "
                         "same-identity same-camera items): check the query and gallery labels.")
    if skipped:
        _warnings.warn(f"{skipped} of {num_query} queries have no correct match in the gallery (identity absent, "
                       "or seen only by the query's camera) and were skipped by reid_cmc_map.", stacklevel=2)
    cmc = (_torch.cumsum(hits, dim=0) / answered).numpy()
    return cmc, ap_sum / answered
