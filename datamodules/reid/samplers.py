"""Identity-balanced batch samplers of re-ID training, deterministic per ``(seed, epoch)`` and DDP-aware.

* :class:`IdentityBatchSampler`: the plain P x K sampler of the batch-hard triplet loss (arXiv:1703.07737):
  P identities, K images each.
* :class:`CameraAwareBatchSampler`: the sampler of MCNL's official code (arXiv:1909.10848, Sec. 3.3): every
  batch takes ``(B / K) // min(8, #cameras)`` identities from each camera, cameras in random order (cameras
  with too few identities skipped), K images per identity, so each anchor has same-camera and
  other-camera negatives in its batch; ``#identities * K // B`` batches per epoch.

Like :class:`datamodules.sampling.EpochSeededRandomSampler`, a sampler's draws at epoch ``e`` come from a
generator seeded with ``(seed, e)`` only (Lightning calls ``set_epoch`` before every epoch), so a resumed run
sees the same batches. Under DDP, every rank builds the same epoch and keeps the batches ``rank, rank +
world_size, ...``: disjoint shares of equal length. ``batch_size`` is per rank (per device). Lightning must
not replace these samplers (``trainer.use_distributed_sampler: false`` in the re-ID experiments).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

from visionsuite.errors import ConfigError

MAX_CAMERAS_PER_BATCH = 8  # official code: identities per camera = identities per batch // min(8, #cameras)


def _distributed_rank_and_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if world_size is None:
        world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    if rank is None:
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    return int(rank), int(world_size)


def _check_batch(batch_size: int, images_per_identity: int) -> None:
    if images_per_identity < 2:
        raise ConfigError(f"data.images_per_identity={images_per_identity}: need at least 2 (positives per anchor).")
    if batch_size <= 0 or batch_size % images_per_identity:
        raise ConfigError(f"data.batch_size={batch_size} is not divisible by data.images_per_identity="
                          f"{images_per_identity}: a batch holds whole identities (P x K); use a multiple of "
                          f"{images_per_identity}.")


class _EpochBatchSampler(Sampler[list[int]], ABC):
    """Shared part: per-identity index lists, the epoch seed and this rank's share of an epoch's batches."""

    def __init__(self, identities: Sequence[int], batch_size: int, images_per_identity: int, seed: int,
                 rank: int | None, world_size: int | None) -> None:
        _check_batch(int(batch_size), int(images_per_identity))
        self.batch_size, self.images_per_identity = int(batch_size), int(images_per_identity)
        self.seed, self.epoch = int(seed), 0
        self.rank, self.world_size = _distributed_rank_and_size(rank, world_size)
        self.indices_of: dict[int, list[int]] = defaultdict(list)
        for index, identity in enumerate(identities):
            self.indices_of[int(identity)].append(index)
        self.identities = sorted(self.indices_of)

    def set_epoch(self, epoch: int) -> None:
        """Select the batches of ``epoch`` (called by Lightning before every epoch)."""
        self.epoch = int(epoch)

    def _generator(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch])

    def _images(self, rng: np.random.Generator, identity: int) -> list[int]:
        """K images of ``identity``, without replacement when it has K or more (official code)."""
        pool = self.indices_of[identity]
        replace = len(pool) < self.images_per_identity
        return [int(index) for index in rng.choice(pool, size=self.images_per_identity, replace=replace)]

    @abstractmethod
    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        """All ranks' batches of ``epoch`` (default: the current one), before the rank split."""

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches()
        yield from batches[self.rank: len(self) * self.world_size: self.world_size]

    def __len__(self) -> int:
        return self._num_batches() // self.world_size

    @abstractmethod
    def _num_batches(self) -> int:
        """Batches per epoch over all ranks."""


class IdentityBatchSampler(_EpochBatchSampler):
    """P x K batches: identities in random order, P = ``batch_size / images_per_identity`` per batch.

    Args:
        identities: the identity label of every training sample (dataset order).
        batch_size: images per batch (per rank); must be a multiple of ``images_per_identity``.
        images_per_identity: K (images of each identity in a batch).
        seed: base seed; epoch ``e`` draws from ``default_rng([seed, e])``.
        rank, world_size: DDP position; default from ``torch.distributed`` (1 process when not initialised).
    """

    def __init__(self, identities: Sequence[int], batch_size: int, images_per_identity: int = 4, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None) -> None:
        super().__init__(identities, batch_size, images_per_identity, seed, rank, world_size)
        self.identities_per_batch = self.batch_size // self.images_per_identity
        if len(self.identities) < self.identities_per_batch:
            raise ConfigError(f"data.batch_size={batch_size} needs {self.identities_per_batch} identities per batch "
                              f"but the training set has {len(self.identities)}; lower data.batch_size.")

    def _num_batches(self) -> int:
        return len(self.identities) // self.identities_per_batch

    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        rng = self._generator(self.epoch if epoch is None else int(epoch))
        order = [self.identities[position] for position in rng.permutation(len(self.identities))]
        batches = []
        for start in range(0, self._num_batches() * self.identities_per_batch, self.identities_per_batch):
            batch = []
            for identity in order[start:start + self.identities_per_batch]:
                batch.extend(self._images(rng, identity))
            batches.append(batch)
        return batches


class CameraAwareBatchSampler(_EpochBatchSampler):
    """MCNL's camera-aware batches (official ``RandomIdentityCameraSampler``, arXiv:1909.10848 Sec. 3.3).

    Each batch: cameras in random order; from each camera with enough identities, ``identities_per_camera``
    identities seen by it, K images of each (from all the identity's images, as the official code), until
    the batch is full. Market (6 cameras, B = 240, K = 8): 5 identities from each camera; Duke (8 cameras,
    B = 256): 4 from each.

    Args:
        identities, cameras: identity and camera label of every training sample (dataset order).
        batch_size, images_per_identity, seed, rank, world_size: as :class:`IdentityBatchSampler`.
    """

    def __init__(self, identities: Sequence[int], cameras: Sequence[int], batch_size: int,
                 images_per_identity: int = 8, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None) -> None:
        super().__init__(identities, batch_size, images_per_identity, seed, rank, world_size)
        if len(cameras) != len(identities):
            raise ValueError(f"{len(cameras)} camera labels for {len(identities)} samples")
        identities_of_camera: dict[int, set[int]] = defaultdict(set)
        for identity, camera in zip(identities, cameras, strict=True):
            identities_of_camera[int(camera)].add(int(identity))
        self.cameras = sorted(identities_of_camera)
        self.identities_of_camera = {camera: sorted(identities_of_camera[camera]) for camera in self.cameras}
        identities_per_batch = self.batch_size // self.images_per_identity
        self.identities_per_camera = identities_per_batch // min(MAX_CAMERAS_PER_BATCH, len(self.cameras))
        usable = [camera for camera in self.cameras
                  if len(self.identities_of_camera[camera]) >= self.identities_per_camera]
        if self.identities_per_camera == 0 or len(usable) * self.identities_per_camera < identities_per_batch \
                or identities_per_batch % self.identities_per_camera:
            raise ConfigError(
                f"data.batch_size={batch_size} with data.images_per_identity={images_per_identity} asks for "
                f"{identities_per_batch} identities a batch, {self.identities_per_camera} from each camera (official "
                f"rule: // min(8, {len(self.cameras)} cameras)), but {len(usable)} camera(s) with that many "
                f"identities give {len(usable) * self.identities_per_camera}: use batch_size = images_per_identity x "
                "identities per camera x cameras (Market: 8 x 5 x 6 = 240).")

    def _num_batches(self) -> int:
        return len(self.identities) * self.images_per_identity // self.batch_size

    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        rng = self._generator(self.epoch if epoch is None else int(epoch))
        batches = []
        for _ in range(self._num_batches()):
            batch: list[int] = []
            for position in rng.permutation(len(self.cameras)):
                pool = self.identities_of_camera[self.cameras[position]]
                if len(pool) < self.identities_per_camera:
                    continue
                for identity in rng.choice(pool, size=self.identities_per_camera, replace=False):
                    batch.extend(self._images(rng, int(identity)))
                if len(batch) >= self.batch_size:
                    break
            batches.append(batch)
        return batches


__all__ = ["CameraAwareBatchSampler", "IdentityBatchSampler"]
