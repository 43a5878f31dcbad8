"""Re-ID evaluation speed: ``reid_cmc_map`` against a per-query loop and torchreid's ``evaluate_rank``.

A random Market-1501-sized problem (3,368 queries x 15,913 gallery by default, 751 identities + distractors,
6 cameras) is scored by (1) ``metrics.reid.reid_cmc_map``, (2) a per-query NumPy loop of the same protocol (what
most re-ID code does), and (3) torchreid's ``evaluate_rank`` with its Cython and its Python path when torchreid is
importable (optional, not a dependency: reported as skipped otherwise). Target: no slower than torchreid's Cython
evaluation. Prints one JSON object, including the largest difference of every result from ``reid_cmc_map``'s.

    python benchmarks/reid_evaluation.py [--queries 3368] [--gallery 15913] [--max-rank 50]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from metrics.reid import reid_cmc_map


def random_problem(queries: int, gallery: int, identities: int = 751, cameras: int = 6, seed: int = 0) -> dict:
    """Random features of a Market-sized problem: each identity near its own centre, plus distractors (id 0)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities + 1, 64)).astype(np.float32)
    query_ids = rng.integers(1, identities + 1, queries)
    gallery_ids = np.where(rng.random(gallery) < 0.15, 0, rng.integers(1, identities + 1, gallery))
    query_features = centres[query_ids] + rng.normal(scale=1.5, size=(queries, 64)).astype(np.float32)
    gallery_features = centres[gallery_ids] + rng.normal(scale=1.5, size=(gallery, 64)).astype(np.float32)
    distances = torch.cdist(torch.from_numpy(query_features), torch.from_numpy(gallery_features)).numpy()
    return {"distances": distances, "query_ids": query_ids, "gallery_ids": gallery_ids,
            "query_cameras": rng.integers(0, cameras, queries), "gallery_cameras": rng.integers(0, cameras, gallery)}


def per_query_loop(distances: np.ndarray, query_ids: np.ndarray, gallery_ids: np.ndarray, query_cameras: np.ndarray,
                   gallery_cameras: np.ndarray, max_rank: int) -> tuple[np.ndarray, float]:
    """The same protocol one query at a time with NumPy (stable sort, drop same id + camera, skip no-match)."""
    cmc_sum, ap_sum, answered = np.zeros(max_rank), 0.0, 0
    for row in range(len(query_ids)):
        order = np.argsort(distances[row], kind="stable")
        kept = ~((gallery_ids[order] == query_ids[row]) & (gallery_cameras[order] == query_cameras[row]))
        matches = (gallery_ids[order] == query_ids[row])[kept]
        if not matches.any():
            continue
        answered += 1
        first = int(np.argmax(matches))
        if first < max_rank:
            cmc_sum[first:] += 1
        hits = np.cumsum(matches)
        ap_sum += float((hits[matches] / (np.flatnonzero(matches) + 1)).mean())
    return cmc_sum / answered, ap_sum / answered


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def torchreid_paths() -> tuple[dict[str, Callable[..., Any]], str] | None:
    """torchreid's ``evaluate_rank`` paths, from the official layout or the PyPI fork's; None if not importable.

    The official package (KaiyangZhou/deep-person-reid, built from its repository) has ``torchreid.metrics``;
    the PyPI ``torchreid`` 0.2.5 is a fork with ``torchreid.reid.metrics`` whose sdist lacks ``rank_cy.pyx``,
    so its Cython path exists only where the extension was compiled into it by hand.
    """
    for module_name in ("torchreid.metrics.rank", "torchreid.reid.metrics.rank"):
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - torchreid is optional; any import failure means "try the next / skip"
            continue
        paths = {"torchreid_python": functools.partial(module.evaluate_rank, use_cython=False)}
        if getattr(module, "IS_CYTHON_AVAI", False):
            paths["torchreid_cython"] = functools.partial(module.evaluate_rank, use_cython=True)
        return paths, module_name
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument("--max-rank", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-loop", action="store_true", help="do not time the per-query loop")
    args = parser.parse_args()
    problem = random_problem(args.queries, args.gallery)
    arrays = (problem["distances"], problem["query_ids"], problem["gallery_ids"], problem["query_cameras"],
              problem["gallery_cameras"])
    warnings.simplefilter("ignore")
    seconds, (cmc, mean_ap) = timed(lambda: reid_cmc_map(*arrays, max_rank=args.max_rank), args.repeats)
    report: dict[str, Any] = {"benchmark": "reid_evaluation", "queries": args.queries, "gallery": args.gallery,
                              "torch_threads": torch.get_num_threads(),
                              "reid_cmc_map": {"seconds": round(seconds, 3), "rank1": round(float(cmc[0]), 4),
                                               "mAP": round(mean_ap, 4)}}
    others: dict[str, Callable[[], Any]] = {}
    if not args.skip_loop:
        others["per_query_loop"] = lambda: per_query_loop(*arrays, args.max_rank)
    found = torchreid_paths()
    if found is None:
        report["torchreid"] = "skipped: torchreid is not importable (optional extra)"
    else:
        paths, module_name = found
        report["torchreid"] = {"module": module_name, "cython": "torchreid_cython" in paths}
        for name, function in paths.items():
            others[name] = lambda function=function: function(*arrays, max_rank=args.max_rank)
    for name, function in others.items():
        try:
            other_seconds, (other_cmc, other_map) = timed(function, 1)
        except Exception as error:  # noqa: BLE001 - e.g. torchreid's Cython extension not compiled
            report[name] = f"failed: {error}"
            continue
        report[name] = {"seconds": round(other_seconds, 3), "speedup_of_reid_cmc_map": round(other_seconds / seconds, 2),
                        "max_cmc_difference": float(np.abs(np.asarray(other_cmc)[: len(cmc)] - cmc).max()),
                        "map_difference": abs(float(other_map) - mean_ap)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
