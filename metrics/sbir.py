"""Zero-shot sketch-based image retrieval metrics (SAKE, arXiv:1904.03208 Sec. 4.1).

* :func:`sbir_map_precision` / :func:`sbir_per_query`: mAP (VOC-interpolated, @all or @top) and Prec@k of a
  sketch x photo distance matrix with the official evaluation script's conventions (ties, Prec@k denominator);
  vectorised over queries and chunked, so Sketchy's unseen split (2,500 x 12,500) takes about a second on a CPU.
* :class:`SbirRetrievalMetric`: a torchmetrics :class:`~torchmetrics.Metric` that keeps the evaluated embeddings
  with their labels and domains; at ``compute`` the sketches (domain 0) are the queries and the photos (domain 1)
  the gallery. Features are L2-normalised and compared by Euclidean distance (official code); the scores are the
  mean over queries (``mAP_all_per_class`` is the mean of per-class means, what the official script prints).
  With ``itq_bits`` the same ranking is also scored on ITQ binary codes with the Hamming distance (``hash_*``);
  ITQ is fitted, unsupervised, on the evaluated embeddings (queries and gallery together).

Importable without Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from metrics.reid import as_cpu_tensor
from networks.sbir.cse_resnet import PHOTO, SKETCH
from networks.sbir.itq import fit_itq, hamming_distances

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
) -> tuple[np.ndarray, np.ndarray]:
    """Per-query VOC-interpolated AP and precision@k of sketch-based image retrieval (SAKE's protocol).

    See :func:`sbir_map_precision` for the convention; this returns the two ``(num_query,)`` float64 arrays
    before averaging. Only the ranks of the relevant photos are needed, so instead of an argsort of every row
    it sorts the distance values (all photos, and the relevant ones) and locates each relevant photo's rank
    with a binary search, several times faster on a CPU; only rows where a relevant photo ties with an
    irrelevant one (whose order the tie rule decides) are arg-sorted, with ``ties="numpy"``.
    """
    distance = as_cpu_tensor(distances, "distances", torch.float32)
    if distance.dim() != 2:
        raise ValueError(f"distances must be (num_query, num_gallery); got shape {tuple(distance.shape)}.")
    num_query, num_gallery = distance.shape
    q_labels = as_cpu_tensor(query_labels, "query_labels", torch.int64)
    g_labels = as_cpu_tensor(gallery_labels, "gallery_labels", torch.int64)
    if q_labels.shape != (num_query,) or g_labels.shape != (num_gallery,):
        raise ValueError(f"query_labels needs {num_query} and gallery_labels {num_gallery} entries (the rows and "
                         f"columns of distances); got {tuple(q_labels.shape)} and {tuple(g_labels.shape)}.")
    if precision_k < 1 or (map_top is not None and map_top < 1):
        raise ValueError(f"precision_k={precision_k} and map_top={map_top} must be at least 1 (map_top may be None).")
    if ties not in SBIR_TIES:
        raise ValueError(f"ties={ties!r}: use one of {', '.join(SBIR_TIES)}.")
    values, q_np, g_np = distance.numpy(), q_labels.numpy(), g_labels.numpy()
    average_precision = np.zeros(num_query, dtype=np.float64)
    precision_at_k = np.zeros(num_query, dtype=np.float64)
    for label in np.unique(q_np):
        columns = np.flatnonzero(g_np == label)
        positives = len(columns)
        if positives == 0:
            continue  # AP 0 and precision 0 for queries whose class has no photo
        rows_of_class = np.flatnonzero(q_np == label)
        for start in range(0, len(rows_of_class), _SBIR_QUERY_CHUNK):
            rows = rows_of_class[start:start + _SBIR_QUERY_CHUNK]
            ranks = _relevant_ranks(values[rows], columns, ties)
            average_precision[rows], precision_at_k[rows] = _scores_from_ranks(ranks, num_gallery, precision_k,
                                                                               map_top)
    return average_precision, precision_at_k


def _relevant_ranks(values: np.ndarray, columns: np.ndarray, ties: str) -> torch.Tensor:
    """1-based ranks (ascending, float64) of the relevant photos ``columns`` in each row of ``values``."""
    positives = len(columns)
    all_sorted = torch.from_numpy(np.ascontiguousarray(np.sort(values, axis=1)))
    relevant_sorted = torch.from_numpy(np.ascontiguousarray(np.sort(values[:, columns], axis=1)))
    # Pessimistic rank of the j-th relevant photo: every photo at a distance <= its own ranks before it, except the
    # relevant photos tied with it that come later in its order.
    at_most = torch.searchsorted(all_sorted, relevant_sorted, right=True)
    relevant_at_most = torch.searchsorted(relevant_sorted, relevant_sorted, right=True)
    ranks = at_most - (relevant_at_most - torch.arange(1, positives + 1)[None, :])
    if ties == "numpy":
        # Where a relevant photo ties only with relevant ones the flags of the ranking, hence AP and precision, do
        # not depend on the tie order; the rows where it ties with an irrelevant photo are ranked as the official
        # script ranks them: np.argsort of the row (NumPy's default sort) of float64 distances.
        tied_all = at_most - torch.searchsorted(all_sorted, relevant_sorted, right=False)
        tied_relevant = relevant_at_most - torch.searchsorted(relevant_sorted, relevant_sorted, right=False)
        mixed = np.flatnonzero((tied_all != tied_relevant).any(dim=1).numpy())
        if len(mixed):
            order = np.argsort(values[mixed].astype(np.float64), axis=1)
            position = np.empty_like(order)
            np.put_along_axis(position, order, np.arange(1, values.shape[1] + 1)[None, :], axis=1)
            ranks[torch.from_numpy(mixed)] = torch.from_numpy(np.sort(position[:, columns], axis=1))
    return ranks.double()


def _scores_from_ranks(ranks: torch.Tensor, num_gallery: int, precision_k: int,
                       map_top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """AP and precision@k of query rows from the ascending ranks of their relevant photos."""
    positives = ranks.shape[1]
    cut = min(precision_k, num_gallery)  # the official eval_precision: top = min(top, gallery size)
    precision_at_k = (ranks <= cut).sum(dim=1).double() / cut
    top = num_gallery if map_top is None else map_top
    kept = ranks <= top
    precision = torch.where(kept, torch.arange(1, positives + 1, dtype=torch.float64)[None, :] / ranks, 0.0)
    # VOC interpolation: precision made non-increasing from the right; recall steps by 1/denominator at hits.
    envelope = torch.flip(torch.cummax(torch.flip(precision, [1]), dim=1).values, [1])
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
    labels = as_cpu_tensor(query_labels, "query_labels", torch.int64).numpy()
    classes = np.unique(labels)
    return (float(np.mean([average_precision[labels == label].mean() for label in classes])),
            float(np.mean([precision_at_k[labels == label].mean() for label in classes])))


class SbirRetrievalMetric(Metric):
    """mAP@all, Prec@k (and mAP@top) of sketches retrieving photos.

    Args:
        precision_ks: the k of each Prec@k (``[100]``; ``[100, 200]`` for Sketchy split 2).
        map_tops: cuts of mAP@top in addition to mAP@all (``[200]`` for Sketchy split 2).
        itq_bits: also score ITQ codes of this many bits (64 in the paper's hashing table); ``None``: off.
    """

    full_state_update = False

    def __init__(self, precision_ks: Sequence[int] = (100,), map_tops: Sequence[int] = (),
                 itq_bits: int | None = None) -> None:
        super().__init__()
        if not precision_ks:
            raise ValueError("precision_ks must name at least one k (100 in the paper).")
        self.precision_ks, self.map_tops = [int(k) for k in precision_ks], [int(top) for top in map_tops]
        self.itq_bits = int(itq_bits) if itq_bits else None
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("domains", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, labels: torch.Tensor, domains: torch.Tensor) -> None:
        self.embeddings.append(embeddings.detach().float())
        self.labels.append(labels.detach().long())
        self.domains.append(domains.detach().long())

    def _scores(self, distances: torch.Tensor, query_labels: torch.Tensor, gallery_labels: torch.Tensor,
                prefix: str) -> dict[str, float]:
        scores = {}
        mean_ap, _ = sbir_map_precision(distances, query_labels, gallery_labels, self.precision_ks[0])
        scores[f"{prefix}mAP_all"] = mean_ap
        for k in self.precision_ks:
            scores[f"{prefix}prec_{k}"] = sbir_map_precision(distances, query_labels, gallery_labels, k, map_top=k)[1]
        for top in self.map_tops:
            scores[f"{prefix}mAP_{top}"] = sbir_map_precision(distances, query_labels, gallery_labels, 1, top)[0]
        if not prefix:
            scores["mAP_all_per_class"] = sbir_map_precision(distances, query_labels, gallery_labels, 1,
                                                             average="class")[0]
        return scores

    def compute(self) -> dict[str, torch.Tensor]:
        embeddings, labels, domains = (dim_zero_cat(state).cpu() for state in (self.embeddings, self.labels,
                                                                               self.domains))
        queries, gallery = domains == SKETCH, domains == PHOTO
        if not bool(queries.any()) or not bool(gallery.any()):
            raise ValueError("SBIR evaluation needs sketches (queries) and photos (gallery) in the evaluated split.")
        features = F.normalize(embeddings, dim=1)
        distances = torch.cdist(features[queries], features[gallery])
        scores = self._scores(distances, labels[queries], labels[gallery], "")
        if self.itq_bits:
            encoder = fit_itq(embeddings, self.itq_bits)
            codes = encoder.codes(embeddings)
            hamming = hamming_distances(codes[queries], codes[gallery])
            scores.update(self._scores(hamming, labels[queries], labels[gallery], "hash_"))
        return {name: torch.tensor(value) for name, value in scores.items()}


__all__ = ["SBIR_AVERAGES", "SBIR_TIES", "SbirRetrievalMetric", "sbir_map_precision", "sbir_per_query"]
