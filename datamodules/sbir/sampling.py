"""Batches that mix sketches and photos in a fixed ratio (SAKE, arXiv:1904.03208 Sec. 4.1).

SAKE trains on batches of 40 images of which 1/3 are sketches on Sketchy and 1/10 on TU-Berlin (whose
photo set is ten times larger). The official training scripts (qliu24/SAKE ``src/train_cse_resnet_sketchy_ext.py``
and ``_tuberlin_ext.py``) draw them from two shuffled loaders, one per domain, of ``batch_size // 3`` sketches and
twice as many photos (Sketchy: 13 + 26) or ``batch_size // 10`` and nine times as many (TU-Berlin: 4 + 36), and
iterate ``zip(sketch_loader, photo_loader)``: an epoch ends when the **shorter** loader is exhausted (on Sketchy the
photos: about 2,250 batches, not the 4,650 it takes to see every sketch), and each loader's last batch may be
smaller (no ``drop_last``). :class:`MixedDomainBatchSampler` does the same with two permutations that depend only
on ``(seed, epoch)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def domain_batch_sizes(batch_size: int, sketch_fraction: float) -> tuple[int, int]:
    """Sketches and photos per batch as the official scripts split ``batch_size``: ``n = batch_size // (1 /
    sketch_fraction)`` sketches and ``n * (1 / sketch_fraction - 1)`` photos (40 at 1/3: 13 + 26; at 1/10: 4 + 36)."""
    if not 0 < sketch_fraction < 1:
        raise ValueError(f"sketch_fraction={sketch_fraction}: must be strictly between 0 and 1.")
    ratio = 1.0 / sketch_fraction
    sketches = max(1, math.floor(batch_size / ratio + 1e-6))
    return sketches, max(1, round(sketches * (ratio - 1)))


class MixedDomainBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices: up to ``sketches_per_batch`` sketches then up to ``photos_per_batch`` photos.

    Batch ``i`` holds positions ``[i * n, (i + 1) * n)`` of each domain's permutation; there are as many batches as
    the domain that runs out first has (see the module docstring), so that domain is seen exactly once per epoch
    and the other one partly.

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
        return min(math.ceil(len(self.sketch_indices) / self.sketches_per_batch),
                   math.ceil(len(self.photo_indices) / self.photos_per_batch))

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        sketches = [self.sketch_indices[k] for k in torch.randperm(len(self.sketch_indices), generator=generator)]
        photos = [self.photo_indices[k] for k in torch.randperm(len(self.photo_indices), generator=generator)]
        sketch_step, photo_step = self.sketches_per_batch, self.photos_per_batch
        for batch in range(len(self)):
            yield (sketches[batch * sketch_step:(batch + 1) * sketch_step]
                   + photos[batch * photo_step:(batch + 1) * photo_step])
