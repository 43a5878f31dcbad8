"""reid_cmc_map against a straightforward per-query loop (the protocol written out), incl. ties and no-match queries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from metrics.reid import reid_cmc_map


def per_query_loop(distances, query_ids, gallery_ids, query_cameras, gallery_cameras, max_rank):
    """The protocol one query at a time: stable sort, drop same id + same camera, skip no-match queries."""
    cmc_sum, ap_sum, answered = np.zeros(max_rank), 0.0, 0
    for row in range(len(query_ids)):
        order = np.argsort(distances[row], kind="stable")
        kept = [index for index in order
                if not (gallery_ids[index] == query_ids[row] and gallery_cameras[index] == query_cameras[row])]
        correct = [gallery_ids[index] == query_ids[row] for index in kept]
        if not any(correct):
            continue
        answered += 1
        first = correct.index(True)
        if first < max_rank:
            cmc_sum[first:] += 1
        precisions = []
        found = 0
        for rank, is_correct in enumerate(correct, start=1):
            if is_correct:
                found += 1
                precisions.append(found / rank)
        ap_sum += float(np.mean(precisions))
    return cmc_sum / answered, ap_sum / answered


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_per_query_loop_with_ties_and_unmatched_queries(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_query, num_gallery = 70, 120
    query_ids = rng.integers(0, 25, num_query)
    gallery_ids = rng.integers(0, 20, num_gallery)  # ids 20..24 are absent from the gallery
    query_cameras, gallery_cameras = rng.integers(0, 3, num_query), rng.integers(0, 3, num_gallery)
    distances = rng.integers(0, 6, (num_query, num_gallery)).astype(np.float32)  # many ties
    expected_cmc, expected_map = per_query_loop(distances, query_ids, gallery_ids, query_cameras,
                                                gallery_cameras, 10)
    with pytest.warns(UserWarning, match="queries have no correct match"):
        cmc, mean_ap = reid_cmc_map(distances, query_ids, gallery_ids, query_cameras, gallery_cameras, max_rank=10)
    assert cmc.shape == (10,)
    np.testing.assert_allclose(cmc, expected_cmc, atol=1e-12)
    assert mean_ap == pytest.approx(expected_map, abs=1e-12)
    assert np.all(np.diff(cmc) >= 0) and 0 <= cmc[0] <= cmc[-1] <= 1


def test_tensor_inputs_and_chunking_give_the_numpy_result() -> None:
    rng = np.random.default_rng(3)
    distances = rng.random((1100, 60))  # more queries than one chunk
    ids_q, ids_g = rng.integers(0, 10, 1100), rng.integers(0, 10, 60)
    cams_q, cams_g = rng.integers(0, 2, 1100), rng.integers(0, 2, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = per_query_loop(distances, ids_q, ids_g, cams_q, cams_g, 50)
        cmc, mean_ap = reid_cmc_map(torch.from_numpy(distances), torch.from_numpy(ids_q), torch.from_numpy(ids_g),
                                    torch.from_numpy(cams_q), torch.from_numpy(cams_g))
    np.testing.assert_allclose(cmc, expected[0], atol=1e-12)
    assert mean_ap == pytest.approx(expected[1], abs=1e-12)


def test_known_ranking() -> None:
    # gallery: [same id other cam (d=2), other id (d=1), same id same cam (d=0, dropped), same id cam 2 (d=3)]
    distances = np.array([[2.0, 1.0, 0.0, 3.0]])
    cmc, mean_ap = reid_cmc_map(distances, [5], [5, 7, 5, 5], [0], [1, 1, 0, 2], max_rank=3)
    np.testing.assert_allclose(cmc, [0.0, 1.0, 1.0])
    assert mean_ap == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_no_query_with_a_match_is_an_error() -> None:
    with pytest.raises(ValueError, match="None of the 2 queries"):
        reid_cmc_map(np.zeros((2, 2)), [1, 2], [3, 4], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="query_ids"):
        reid_cmc_map(np.zeros((2, 2)), [1], [3, 4], [0, 0], [1, 1])
