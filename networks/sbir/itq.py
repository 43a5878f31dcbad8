"""Iterative quantization (ITQ; Gong & Lazebnik, CVPR 2011) of SAKE's embeddings into binary codes.

SAKE (arXiv:1904.03208 Sec. 4.1) reports zero-shot hashing results with 64-bit codes obtained by ITQ on
the learned features, compared with the Hamming distance. ITQ: centre, project on the top-``bits``
principal directions, then alternate B = sign(V R) and the orthogonal Procrustes rotation R minimising
||B - V R||_F.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ItqEncoder:
    """A fitted ITQ code: ``codes(x) = sign((x - mean) @ projection @ rotation) > 0``."""

    mean: torch.Tensor
    projection: torch.Tensor
    rotation: torch.Tensor

    def codes(self, features: torch.Tensor) -> torch.Tensor:
        """Binary codes (N, bits) as a bool tensor."""
        projected = (features.double() - self.mean) @ self.projection @ self.rotation
        return projected > 0


def fit_itq(features: torch.Tensor, bits: int = 64, iterations: int = 50, seed: int = 0) -> ItqEncoder:
    """Fit ITQ on ``features`` (N, D), ``bits <= D``."""
    data = features.detach().double().cpu()
    if bits > data.shape[1]:
        raise ValueError(f"bits={bits} exceeds the feature size {data.shape[1]}; use an embedding of >= {bits} dims.")
    mean = data.mean(dim=0)
    centred = data - mean
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    _values, vectors = torch.linalg.eigh(covariance)
    projection = vectors[:, -bits:].flip(1)
    projected = centred @ projection
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(bits, bits, generator=generator, dtype=torch.float64))
    for _ in range(iterations):
        binary = torch.where(projected @ rotation >= 0, 1.0, -1.0).double()
        left, _singular, right_t = torch.linalg.svd(projected.T @ binary)
        rotation = left @ right_t
    return ItqEncoder(mean, projection, rotation)


def hamming_distances(query_codes: torch.Tensor, gallery_codes: torch.Tensor) -> torch.Tensor:
    """Hamming distances (Q, G) between bool codes."""
    queries, gallery = query_codes.float(), gallery_codes.float()
    bits = queries.shape[1]
    agreements = queries @ gallery.T + (1 - queries) @ (1 - gallery).T
    return bits - agreements
