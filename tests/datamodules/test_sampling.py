"""EpochSeededRandomSampler: order depends only on (seed, epoch); Lightning sees it as shuffling."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.data import _set_sampler_epoch
from pytorch_lightning.utilities.data import _is_dataloader_shuffled
from torch.utils.data import DataLoader, RandomSampler

from datamodules.sampling import EpochSeededRandomSampler

DATA = list(range(50))


def test_same_order_for_same_seed_and_epoch():
    first, second = EpochSeededRandomSampler(DATA, seed=7), EpochSeededRandomSampler(DATA, seed=7)
    for epoch in (0, 3):
        first.set_epoch(epoch)
        second.set_epoch(epoch)
        assert list(first) == list(second)
        assert list(first) == list(first)  # iterating again gives the same order
    assert first.permutation(3) == torch.randperm(50, generator=torch.Generator().manual_seed(10)).tolist()


def test_different_order_across_epochs_and_seeds():
    sampler = EpochSeededRandomSampler(DATA, seed=0)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders[0] != orders[1] != orders[2]
    assert all(sorted(order) == DATA for order in orders)
    assert list(EpochSeededRandomSampler(DATA, seed=1)) != orders[0]


def test_restricted_to_indices():
    indices = [3, 10, 11, 20, 42]
    sampler = EpochSeededRandomSampler(DATA, seed=0, indices=indices)
    assert len(sampler) == 5 and sampler.num_samples == 5
    assert sorted(sampler) == indices
    sampler.set_epoch(1)
    assert sorted(sampler) == indices


def test_is_a_random_sampler_for_lightning():
    sampler = EpochSeededRandomSampler(DATA, seed=0)
    assert isinstance(sampler, RandomSampler)
    loader = DataLoader(DATA, batch_size=4, sampler=sampler)
    assert _is_dataloader_shuffled(loader)
    _set_sampler_epoch(loader, 5)
    assert sampler.epoch == 5


class _RecordOrder(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.orders: list[list[int]] = []

    def on_train_epoch_start(self) -> None:
        self.orders.append([])

    def training_step(self, batch, batch_idx):
        self.orders[-1].extend(batch.tolist())
        return (self.weight * batch.float()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_sets_the_epoch_every_epoch(tmp_path):
    sampler = EpochSeededRandomSampler(torch.arange(12), seed=4)
    loader = DataLoader(torch.arange(12), batch_size=5, sampler=sampler)
    module = _RecordOrder()
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, train_dataloaders=loader)
    assert module.orders == [sampler.permutation(epoch) for epoch in range(3)]
