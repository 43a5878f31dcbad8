"""Zero-shot SBIR evaluation speed: ``sbir_map_precision`` vs a per-query loop, at Sketchy's unseen-split size.

Target: mAP@all + Prec@100 of about 2,500 sketch queries x 12,500 photos in under 5 seconds on a CPU (wall seconds;
``*_cpu_s`` is the CPU time of all threads, a steadier number on a shared machine). The inputs are random 64-d
L2-normalised embeddings of 25 classes (distances included in neither time).
Both paths compute the same numbers (checked here); prints one JSON object.

    python benchmarks/sbir_evaluation.py [--queries 2500] [--gallery 12500] [--classes 25] [--loop-queries N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from metrics.sbir import sbir_map_precision


def per_query_loop(distances: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray,
                   precision_k: int = 100) -> tuple[float, float]:
    """The official evaluation's shape: one query at a time (numpy within a query), ties in np.argsort's order."""
    aps, precisions = [], []
    for row, label in zip(distances, query_labels, strict=True):
        matches = gallery_labels == label
        relevant = matches[np.argsort(row.astype(np.float64))]  # the official np.argsort(-scores), scores = -distances
        positives = relevant.sum()
        cut = min(precision_k, len(row))  # the official eval_precision: top = min(top, gallery size)
        precisions.append(relevant[:cut].sum() / cut)
        if positives == 0:
            aps.append(0.0)
            continue
        tp = np.cumsum(relevant)
        recall = np.concatenate([[0.0], tp / positives, [1.0]])
        precision = np.concatenate([[0.0], tp / np.arange(1, len(tp) + 1), [0.0]])
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        aps.append(float(np.sum(np.diff(recall) * precision[1:])))
    return float(np.mean(aps)), float(np.mean(precisions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=2500)
    parser.add_argument("--gallery", type=int, default=12500)
    parser.add_argument("--classes", type=int, default=25)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--loop-queries", type=int, default=None, help="queries the loop runs (default: all)")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(args.classes, args.dim, generator=generator)
    query_labels = torch.randint(0, args.classes, (args.queries,), generator=generator)
    gallery_labels = torch.randint(0, args.classes, (args.gallery,), generator=generator)
    queries = torch.nn.functional.normalize(centres[query_labels] + 1.5 * torch.randn(args.queries, args.dim,
                                                                                      generator=generator), dim=1)
    gallery = torch.nn.functional.normalize(centres[gallery_labels] + 1.5 * torch.randn(args.gallery, args.dim,
                                                                                        generator=generator), dim=1)
    distances = torch.cdist(queries, gallery)

    start, cpu_start = time.perf_counter(), time.process_time()
    mean_ap, precision = sbir_map_precision(distances, query_labels, gallery_labels, precision_k=100)
    vectorised_s, vectorised_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start

    loop_queries = args.loop_queries or args.queries
    subset = distances[:loop_queries].numpy()
    start, cpu_start = time.perf_counter(), time.process_time()
    loop_ap, loop_precision = per_query_loop(subset, query_labels[:loop_queries].numpy(), gallery_labels.numpy())
    loop_s, loop_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    check_ap, check_precision = sbir_map_precision(subset, query_labels[:loop_queries], gallery_labels)
    print(json.dumps({
        "queries": args.queries, "gallery": args.gallery, "classes": args.classes,
        "mAP_all": round(mean_ap, 6), "prec_100": round(precision, 6),
        "vectorised_s": round(vectorised_s, 3), "vectorised_cpu_s": round(vectorised_cpu_s, 3),
        "loop_queries": loop_queries, "loop_s": round(loop_s, 3), "loop_cpu_s": round(loop_cpu_s, 3),
        "loop_s_per_all_queries": round(loop_s * args.queries / loop_queries, 3),
        "same_result": bool(abs(loop_ap - check_ap) < 1e-9 and abs(loop_precision - check_precision) < 1e-9),
        "target_s": 5.0, "meets_target": vectorised_s < 5.0, "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
