"""A shuffling sampler whose order depends only on ``(seed, epoch)``, so resumed runs see the same data order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler


class EpochSeededRandomSampler(RandomSampler):
    """Random permutation sampler whose order at epoch ``e`` is ``randperm(n)`` seeded with ``seed + e``.

    Lightning calls ``set_epoch`` on the samplers of the training loaders at the start of every epoch, so a
    run resumed from a checkpoint at epoch ``e`` draws exactly the order an uninterrupted run draws there
    (the global RNG state, which a plain ``RandomSampler`` uses, is not restored from checkpoints).

    It subclasses :class:`~torch.utils.data.RandomSampler` so that Lightning recognises the loader as
    shuffled and, under DDP, replaces it by a shuffling ``DistributedSampler`` over the loader's dataset.
    Note that such a replacement samples the whole ``data_source``: when the sampler is restricted with
    ``indices``, prefer a subset dataset (as :class:`ClassificationDataModule` does) if DDP is in play.

    Args:
        data_source: The dataset (only its length is used when ``indices`` is None).
        seed: Base seed of the permutations.
        indices: Optional list of dataset indices to sample from (a deterministic replacement of
            ``SubsetRandomSampler``); the sampler then yields a permutation of these indices.
    """

    def __init__(self, data_source: Sized, seed: int = 0, indices: Sequence[int] | None = None) -> None:
        self.indices = None if indices is None else [int(index) for index in indices]
        self.seed = int(seed)
        self.epoch = 0
        super().__init__(data_source)

    @property
    def num_samples(self) -> int:  # type: ignore[override]
        """Number of indices yielded per epoch."""
        return len(self.indices) if self.indices is not None else len(self.data_source)

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (called by Lightning before every epoch)."""
        self.epoch = int(epoch)

    def permutation(self, epoch: int | None = None) -> list[int]:
        """The order of ``epoch`` (default: the current epoch) as a list of dataset indices."""
        epoch = self.epoch if epoch is None else int(epoch)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.num_samples, generator=generator).tolist()
        if self.indices is None:
            return order
        return [self.indices[position] for position in order]

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation())

    def __len__(self) -> int:
        return self.num_samples


class EpochSeededDataLoader(DataLoader):
    """A DataLoader whose per-epoch random draws depend only on ``(seed, epoch)``, not on the global RNG.

    A plain DataLoader draws its workers' base seed from the global torch RNG each time an epoch's
    iterator is created. Lightning creates that iterator at a different point of the loop when a run
    resumes from a checkpoint, so the draw would shift every later random number (augmentation,
    drop-path). Here the base seed comes from a private generator re-seeded from ``(seed, epoch)``
    before every iterator, so resumed and uninterrupted runs agree. ``epoch_source`` returns the
    current epoch (the trainer's, already restored when a run resumes).
    """

    def __init__(self, *args: Any, seed: int = 0, epoch_source: Callable[[], int] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(*args, **kwargs)
        self.seed = int(seed)
        self.epoch_source = epoch_source

    def __iter__(self) -> Any:
        epoch = self.epoch_source() if self.epoch_source is not None else 0
        if self.generator is not None:
            self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        return super().__iter__()


def trainer_epoch(datamodule: Any) -> int:
    """The current epoch of the trainer ``datamodule`` is attached to (0 before it is attached)."""
    trainer = getattr(datamodule, "trainer", None)
    return int(trainer.current_epoch) if trainer is not None else 0


def epoch_seeded_train_loader(datamodule: Any, dataset: Sized, seed: int, **loader_options: Any) -> DataLoader:
    """The training loader every DataModule family uses: order and worker seeds depend only on ``(seed, epoch)``.

    Shuffled by :class:`EpochSeededRandomSampler`, loaded by :class:`EpochSeededDataLoader` whose epoch is the
    trainer's of ``datamodule``. Workers are not persistent: fresh workers every epoch, seeded from
    ``(seed, epoch)``, keep resumed runs exact. ``loader_options``: batch_size, num_workers, collate_fn...
    """
    if loader_options.get("persistent_workers"):
        raise ValueError("epoch_seeded_train_loader: persistent workers would keep the first epoch's seeds.")
    return EpochSeededDataLoader(dataset, sampler=EpochSeededRandomSampler(dataset, seed=seed), seed=seed,
                                 epoch_source=lambda: trainer_epoch(datamodule), **loader_options)
