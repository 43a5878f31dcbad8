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

from lightning_modules import reid_ranking as _reid_ranking  # noqa: E402

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

    No full sort: only the correct matches are ranked (:mod:`lightning_modules.reid_ranking`): every gallery
    item is placed among the query's few sorted match distances by a binary search, and a cumulative count
    gives each match's rank among the kept items, which is all CMC and AP need.
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
    table = _reid_ranking.IdentityTable(g_ids)
    for start in range(0, num_query, _REID_QUERY_CHUNK):
        stop = min(start + _REID_QUERY_CHUNK, num_query)
        ranks, num_matches = _reid_ranking.match_ranks(distance[start:stop], q_ids[start:stop], q_cams[start:stop],
                                                       g_ids, g_cams, table)
        has_match = num_matches > 0
        if not bool(has_match.any()):
            continue
        ranks, num_matches = ranks[has_match], num_matches[has_match]
        hits += _torch.bincount((ranks[:, 0] - 1).clamp(max=max_rank), minlength=max_rank + 1)[:max_rank].double()
        found = _torch.arange(1, ranks.shape[1] + 1, dtype=_torch.float64)[None, :]
        precision = _torch.where(ranks > 0, found / ranks.clamp(min=1).double(), 0.0)
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


# ------------------------------------------------------------------------------------------------- SBIR (SAKE)
_SBIR_QUERY_CHUNK = 256  # queries ranked at once: 256 x 12,500 photos is ~26 MB of int64 per array
SBIR_AVERAGES = ("query", "class")
#: How photos at equal distances are ordered: ``numpy`` as the official script (NumPy's default argsort of each
#: row), ``pessimistic`` relevant photos after the irrelevant ones (a lower bound free of the sort's choice).
SBIR_TIES = ("numpy", "pessimistic")


def sbir_per_query(
    distances: object,
    query_labels: object,
    gallery_labels: object,
    precision_k: int = 100,
    map_top: int | None = None,
    ties: str = "numpy",
) -> tuple[_np.ndarray, _np.ndarray]:
    """Per-query VOC-interpolated AP and precision@k of sketch-based image retrieval (SAKE's protocol).

    See :func:`sbir_map_precision` for the convention; this returns the two ``(num_query,)`` float64 arrays
    before averaging. Only the ranks of the relevant photos are needed, so instead of an argsort of every row
    it sorts the distance values (all photos, and the relevant ones) and locates each relevant photo's rank
    with a binary search, several times faster on a CPU; only rows where a relevant photo ties with an
    irrelevant one (whose order the tie rule decides) are arg-sorted, with ``ties="numpy"``.
    """
    distance = _as_tensor(distances, "distances", _torch.float32)
    if distance.dim() != 2:
        raise ValueError(f"distances must be (num_query, num_gallery); got shape {tuple(distance.shape)}.")
    num_query, num_gallery = distance.shape
    q_labels = _as_tensor(query_labels, "query_labels", _torch.int64)
    g_labels = _as_tensor(gallery_labels, "gallery_labels", _torch.int64)
    if q_labels.shape != (num_query,) or g_labels.shape != (num_gallery,):
        raise ValueError(f"query_labels needs {num_query} and gallery_labels {num_gallery} entries (the rows and "
                         f"columns of distances); got {tuple(q_labels.shape)} and {tuple(g_labels.shape)}.")
    if precision_k < 1 or (map_top is not None and map_top < 1):
        raise ValueError(f"precision_k={precision_k} and map_top={map_top} must be at least 1 (map_top may be None).")
    if ties not in SBIR_TIES:
        raise ValueError(f"ties={ties!r}: use one of {', '.join(SBIR_TIES)}.")
    values, q_np, g_np = distance.numpy(), q_labels.numpy(), g_labels.numpy()
    average_precision = _np.zeros(num_query, dtype=_np.float64)
    precision_at_k = _np.zeros(num_query, dtype=_np.float64)
    for label in _np.unique(q_np):
        columns = _np.flatnonzero(g_np == label)
        positives = len(columns)
        if positives == 0:
            continue  # AP 0 and precision 0 for queries whose class has no photo
        rows_of_class = _np.flatnonzero(q_np == label)
        for start in range(0, len(rows_of_class), _SBIR_QUERY_CHUNK):
            rows = rows_of_class[start:start + _SBIR_QUERY_CHUNK]
            ranks = _relevant_ranks(values[rows], columns, ties)
            average_precision[rows], precision_at_k[rows] = _scores_from_ranks(ranks, num_gallery, precision_k,
                                                                               map_top)
    return average_precision, precision_at_k


def _relevant_ranks(values: _np.ndarray, columns: _np.ndarray, ties: str) -> _torch.Tensor:
    """1-based ranks (ascending, float64) of the relevant photos ``columns`` in each row of ``values``."""
    positives = len(columns)
    all_sorted = _torch.from_numpy(_np.ascontiguousarray(_np.sort(values, axis=1)))
    relevant_sorted = _torch.from_numpy(_np.ascontiguousarray(_np.sort(values[:, columns], axis=1)))
    # Pessimistic rank of the j-th relevant photo: every photo at a distance <= its own ranks before it, except the
    # relevant photos tied with it that come later in its order.
    at_most = _torch.searchsorted(all_sorted, relevant_sorted, right=True)
    relevant_at_most = _torch.searchsorted(relevant_sorted, relevant_sorted, right=True)
    ranks = at_most - (relevant_at_most - _torch.arange(1, positives + 1)[None, :])
    if ties == "numpy":
        # Where a relevant photo ties only with relevant ones the flags of the ranking, hence AP and precision, do
        # not depend on the tie order; the rows where it ties with an irrelevant photo are ranked as the official
        # script ranks them: np.argsort of the row (NumPy's default sort) of float64 distances.
        tied_all = at_most - _torch.searchsorted(all_sorted, relevant_sorted, right=False)
        tied_relevant = relevant_at_most - _torch.searchsorted(relevant_sorted, relevant_sorted, right=False)
        mixed = _np.flatnonzero((tied_all != tied_relevant).any(dim=1).numpy())
        if len(mixed):
            order = _np.argsort(values[mixed].astype(_np.float64), axis=1)
            position = _np.empty_like(order)
            _np.put_along_axis(position, order, _np.arange(1, values.shape[1] + 1)[None, :], axis=1)
            ranks[_torch.from_numpy(mixed)] = _torch.from_numpy(_np.sort(position[:, columns], axis=1))
    return ranks.double()


def _scores_from_ranks(ranks: _torch.Tensor, num_gallery: int, precision_k: int,
                       map_top: int | None) -> tuple[_np.ndarray, _np.ndarray]:
    """AP and precision@k of query rows from the ascending ranks of their relevant photos."""
    positives = ranks.shape[1]
    cut = min(precision_k, num_gallery)  # the official eval_precision: top = min(top, gallery size)
    precision_at_k = (ranks <= cut).sum(dim=1).double() / cut
    top = num_gallery if map_top is None else map_top
    kept = ranks <= top
    precision = _torch.where(kept, _torch.arange(1, positives + 1, dtype=_torch.float64)[None, :] / ranks, 0.0)
    # VOC interpolation: precision made non-increasing from the right; recall steps by 1/denominator at hits.
    envelope = _torch.flip(_torch.cummax(_torch.flip(precision, [1]), dim=1).values, [1])
    denominator = positives if map_top is None else min(map_top, positives)
    average_precision = (envelope * kept).sum(dim=1) / denominator
    return average_precision.numpy(), precision_at_k.numpy()


def sbir_map_precision(
    distances: object,
    query_labels: object,
    gallery_labels: object,
    precision_k: int = 100,
    map_top: int | None = None,
    average: str = "query",
    ties: str = "numpy",
) -> tuple[float, float]:
    """Mean average precision and precision@k of zero-shot sketch-based image retrieval (SAKE protocol).

    Convention: SAKE's official evaluation (arXiv:1904.03208 Sec. 4.1; qliu24/SAKE
    ``src/test_cse_resnet_tuberlin_zeroshot.py``, ``eval_AP_inner``, ``VOCap`` and ``eval_precision``, which the
    Sketchy test script imports). For each query sketch the gallery photos are ranked by increasing distance; a
    photo is relevant when its label equals the query's. Photos at equal distances (frequent with the Hamming
    distances of binary codes) are ordered as the official script orders them, by NumPy's default
    ``np.argsort`` of the query's row of float64 distances (``ties="numpy"``, the reported numbers); which tied
    photo comes first is the sort algorithm's choice, so with many ties the numbers can move slightly between
    NumPy versions or CPUs. ``ties="pessimistic"`` ranks relevant photos after the irrelevant ones at the same
    distance instead (no credit from ties: a lower bound). Distances are compared in float32. Over the ranking
    cut at ``map_top`` (the whole gallery when ``None``: mAP@all), true/false positives are accumulated;
    recall = TP / P where P is the number of relevant photos in the whole gallery, or ``min(map_top, P)`` with
    a cut; precision = TP / rank. AP is VOC-interpolated: recall padded with 0 and 1, precision with 0 and 0,
    precision made non-increasing from the right, and AP = sum of (recall step x precision) over the points
    where recall changes. A query with no relevant photo has AP 0. Precision@k = relevant photos among the first
    ``min(k, gallery size)`` divided by ``min(k, gallery size)`` (the official ``top = min(top, tot)``: a
    gallery smaller than k is not penalised), over the full ranking, independent of ``map_top``.

    Args:
        distances: ``(num_query, num_gallery)`` distances (numpy array or tensor; smaller = more similar).
        query_labels, gallery_labels: integer class labels of the queries and of the gallery items.
        precision_k: k of precision@k (100 in the paper; 200 for the Sketchy 104/21 split).
        map_top: cut of the ranking for mAP@top (200 for split 2); ``None`` for mAP@all.
        average: ``"query"`` (mean over all queries, the number the suite reports) or ``"class"`` (mean over
            the query classes of the per-class means, what the official script prints).
        ties: ``"numpy"`` (the official order, default) or ``"pessimistic"`` (see above).

    Returns:
        ``(mean_ap, precision_at_k)``, two floats in [0, 1].
    """
    if average not in SBIR_AVERAGES:
        raise ValueError(f"average={average!r}: use one of {', '.join(SBIR_AVERAGES)}.")
    average_precision, precision_at_k = sbir_per_query(distances, query_labels, gallery_labels, precision_k, map_top,
                                                       ties)
    if average == "query":
        return float(average_precision.mean()), float(precision_at_k.mean())
    labels = _as_tensor(query_labels, "query_labels", _torch.int64).numpy()
    classes = _np.unique(labels)
    return (float(_np.mean([average_precision[labels == label].mean() for label in classes])),
            float(_np.mean([precision_at_k[labels == label].mean() for label in classes])))
