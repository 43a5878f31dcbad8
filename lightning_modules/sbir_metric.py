"""Zero-shot SBIR evaluation as one torchmetrics Metric (SAKE, arXiv:1904.03208 Sec. 4.1).

The metric keeps the evaluated embeddings with their labels and domains; at ``compute`` the sketches
(domain 0) are the queries and the photos (domain 1) the gallery. Features are L2-normalised and compared by
Euclidean distance (official code); mAP and precision follow :func:`sbir_map_precision` with the official
script's conventions (ties at equal distances in NumPy's argsort order, Prec@k over ``min(k, gallery size)``; mean
over queries; ``mAP_all_per_class`` is the mean of per-class means, what the official script prints). With ``itq_bits``
the same ranking is also scored on ITQ binary codes with the Hamming distance (``hash_*``); ITQ is fitted,
unsupervised, on the evaluated embeddings (queries and gallery together).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lightning_modules.retrieval_metrics import sbir_map_precision
from networks.sbir.itq import fit_itq, hamming_distances

SKETCH, PHOTO = 0, 1


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
        self.precision_ks, self.map_tops, self.itq_bits = list(precision_ks), list(map_tops), itq_bits
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
