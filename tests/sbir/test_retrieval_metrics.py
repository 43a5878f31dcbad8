"""sbir_map_precision against a per-query loop of SAKE's official evaluation (ties, Prec@k, VOC AP)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics.sbir import sbir_map_precision, sbir_per_query


def loop_reference(distances: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray, k: int,
                   top: int | None, ties: str = "numpy") -> tuple[np.ndarray, np.ndarray]:
    """One query at a time as the official test script (eval_AP_inner, VOCap, eval_precision): ranking by
    np.argsort of the row (``numpy``), or by distance with irrelevant photos first at ties (``pessimistic``)."""
    aps, precisions = [], []
    for row, label in zip(distances, query_labels, strict=True):
        matches = gallery_labels == label
        order = np.argsort(row.astype(np.float64)) if ties == "numpy" else np.lexsort((matches, row))
        relevant = matches[order]
        positives = relevant.sum()
        cut = min(k, len(row))
        precisions.append(relevant[:cut].sum() / cut)
        ranked = relevant[:top] if top else relevant
        tp, fp = np.cumsum(ranked), np.cumsum(~ranked)
        denominator = min(top, positives) if top else positives
        if positives == 0:
            aps.append(0.0)
            continue
        recall, precision = tp / denominator, tp / (tp + fp)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.concatenate([[0.0], precision, [0.0]])
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        changes = np.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1])))
    return np.array(aps), np.array(precisions)


@pytest.mark.parametrize(("k", "top"), [(100, None), (10, None), (200, 200), (5, 7)])
@pytest.mark.parametrize("ties", ["numpy", "pessimistic"])
def test_matches_the_per_query_loop(k: int, top: int | None, ties: str) -> None:
    rng = np.random.default_rng(k)
    distances = rng.random((300, 400)).astype(np.float32)
    distances[:, ::7] = np.round(distances[:, ::7], 1)  # ties
    query_labels, gallery_labels = rng.integers(0, 6, 300), rng.integers(0, 6, 400)
    gallery_labels[gallery_labels == 5] = 4  # class 5 has no photo: those queries score AP 0
    aps, precisions = sbir_per_query(distances, query_labels, gallery_labels, k, top, ties)
    ref_aps, ref_precisions = loop_reference(distances, query_labels, gallery_labels, k, top, ties)
    np.testing.assert_allclose(aps, ref_aps, atol=1e-12)
    np.testing.assert_allclose(precisions, ref_precisions, atol=1e-12)
    mean_ap, precision = sbir_map_precision(torch.from_numpy(distances), torch.from_numpy(query_labels),
                                            torch.from_numpy(gallery_labels), k, top, ties=ties)
    assert mean_ap == pytest.approx(ref_aps.mean()) and precision == pytest.approx(ref_precisions.mean())
    per_class = sbir_map_precision(distances, query_labels, gallery_labels, k, top, average="class", ties=ties)[0]
    assert per_class == pytest.approx(np.mean([ref_aps[query_labels == c].mean() for c in np.unique(query_labels)]))


def test_hamming_ties_follow_numpys_argsort_as_the_official_script() -> None:
    """Integer (Hamming) distances: nearly every relevant photo ties with irrelevant ones; the official order is
    np.argsort's, which gives credit the pessimistic rule withholds."""
    rng = np.random.default_rng(1)
    distances = rng.integers(0, 9, (120, 500)).astype(np.float32)
    query_labels, gallery_labels = rng.integers(0, 4, 120), rng.integers(0, 4, 500)
    official = sbir_per_query(distances, query_labels, gallery_labels, 100)
    np.testing.assert_allclose(official, loop_reference(distances, query_labels, gallery_labels, 100, None),
                               atol=1e-12)
    pessimistic = sbir_per_query(distances, query_labels, gallery_labels, 100, ties="pessimistic")
    assert (official[0] >= pessimistic[0] - 1e-12).all() and official[0].mean() > pessimistic[0].mean()
    with pytest.raises(ValueError, match="ties='random'"):
        sbir_per_query(distances, query_labels, gallery_labels, ties="random")


def test_precision_at_k_of_a_gallery_smaller_than_k_divides_by_the_gallery_size() -> None:
    """The official eval_precision: top = min(top, gallery size)."""
    gallery_labels = np.array([0, 0, 0, 1, 1])
    distances = np.array([[0.0, 0.1, 0.2, 1.0, 1.1]])
    _, precision = sbir_map_precision(distances, np.array([0]), gallery_labels, precision_k=100)
    assert precision == pytest.approx(3 / 5)  # not 3 / 100
    _, precision = sbir_map_precision(distances, np.array([0]), gallery_labels, precision_k=2)
    assert precision == 1.0


def test_perfect_and_reversed_rankings() -> None:
    gallery_labels = np.array([0, 0, 1, 1, 1])
    distances = np.array([[0.0, 0.1, 1.0, 1.1, 1.2], [1.0, 1.1, 0.0, 0.1, 0.2]])
    assert sbir_map_precision(distances, np.array([0, 1]), gallery_labels, precision_k=2) == (1.0, 1.0)
    mean_ap, _ = sbir_map_precision(-distances, np.array([0, 1]), gallery_labels, precision_k=2)
    assert 0 < mean_ap < 0.6


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="query_labels"):
        sbir_map_precision(np.zeros((3, 4)), np.zeros(2), np.zeros(4))
    with pytest.raises(ValueError, match="average"):
        sbir_map_precision(np.zeros((3, 4)), np.zeros(3), np.zeros(4), average="median")
