"""Batches that mix sketches and photos in a fixed ratio (SAKE, arXiv:1904.03208 Sec. 4.1).

SAKE trains on batches of 40 images of which 1/3 are sketches on Sketchy and 1/10 on TU-Berlin (whose
photo set is ten times larger). Each batch takes ``sketches_per_batch`` sketch indices and
``photos_per_batch`` photo indices from two permutations that depend only on ``(seed, epoch)``; an epoch
lasts until the domain that needs more batches has been seen once, the other domain's permutation
starting over when it runs out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class MixedDomainBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices: ``sketches_per_batch`` sketches then ``photos_per_batch`` photos.

    Args:
        sketch_indices / photo_indices: dataset indices of the training sketches and photos.
        sketches_per_batch / photos_per_batch: how many of each a batch holds.
        seed: base seed; epoch ``e`` uses ``seed + e`` (Lightning calls :meth:`set_epoch`).
    """

    def __init__(self, sketch_indices: Sequence[int], photo_indices: Sequence[int], sketches_per_batch: int,
                 photos_per_batch: int, seed: int = 0) -> None:
        if not sketch_indices or not photo_indices:
            raise ValueError("MixedDomainBatchSampler needs at least one sketch and one photo.")
        if sketches_per_batch < 1 or photos_per_batch < 1:
            raise ValueError(f"sketches_per_batch={sketches_per_batch} and photos_per_batch={photos_per_batch} must "
                             "both be at least 1.")
        self.sketch_indices, self.photo_indices = list(sketch_indices), list(photo_indices)
        self.sketches_per_batch, self.photos_per_batch = sketches_per_batch, photos_per_batch
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return max(math.ceil(len(self.sketch_indices) / self.sketches_per_batch),
                   math.ceil(len(self.photo_indices) / self.photos_per_batch))

    @staticmethod
    def _stream(indices: list[int], generator: torch.Generator) -> Iterator[int]:
        while True:
            for position in torch.randperm(len(indices), generator=generator).tolist():
                yield indices[position]

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        sketches, photos = self._stream(self.sketch_indices, generator), self._stream(self.photo_indices, generator)
        for _ in range(len(self)):
            yield [next(sketches) for _ in range(self.sketches_per_batch)] + \
                  [next(photos) for _ in range(self.photos_per_batch)]
