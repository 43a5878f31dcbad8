"""Shared pieces of the architecture-search tests: tiny networks, tiny configs, DDP probe callbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from networks.nas.arch_gradients import build_arch_gradient
from networks.nas.search_space import SearchNetwork, num_cell_edges

# Search on the embedded digits at test scale (seconds per epoch on one CPU core).
TINY_SEARCH = [
    "experiment=darts_digits",
    "model.net.init_channels=4",
    "model.net.layers=3",
    "data.image_size=8",
    "data.batch_size=16",
    "model.draw_every_n_epochs=0",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=1",
]

# The P-DARTS demo chain at test scale: 2 epochs per stage (the first without architecture updates), 2 batches.
TINY_CHAIN = ["experiment=pdarts_digits", "model.net.init_channels=4", "data.image_size=8", "data.batch_size=16",
              "trainer.max_epochs=2", "++trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
              "trainer.limit_test_batches=1", "test_after_fit=false"]


def tiny_network(seed: int = 0, candidate_ops=None, C: int = 4, classes: int = 3) -> SearchNetwork:
    """A float64 search network on 1-channel 8x8 images: small enough for exact second derivatives."""
    torch.manual_seed(seed)
    return SearchNetwork(C, classes, 3, in_channels=1, candidate_ops=candidate_ops).double()


def tiny_batches(seed: int = 1, classes: int = 3, size: int = 4) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple((torch.randn(size, 1, 8, 8, generator=generator, dtype=torch.float64),
                  torch.randint(0, classes, (size,), generator=generator)) for _ in range(2))


def few_weights_candidates() -> dict[str, list[list[str]]]:
    """Per-edge candidates with few weights: one conv on five normal-cell edges, pooling elsewhere."""
    edges = num_cell_edges(4)
    normal = [["none", "skip_connect", "dil_conv_3x3"]] * 5 + [["none", "skip_connect", "avg_pool_3x3"]] * (edges - 5)
    return {"normal": normal, "reduce": [["none", "max_pool_3x3", "avg_pool_3x3"]] * edges}


class CycleArchGradients(pl.Callback):
    """Switches ``model.arch_step.gradient`` every epoch through ``modes`` (one run covers every mode)."""

    def __init__(self, modes: tuple[str, ...] = ("first_order", "second_order", "amended")) -> None:
        self.modes = tuple(modes)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mode = self.modes[trainer.current_epoch % len(self.modes)]
        pl_module.arch_gradient = build_arch_gradient(mode, eta=pl_module.arch_step.eta)


class ParameterChecksums(pl.Callback):
    """After every training step, records a checksum of alpha and of the weights on this rank.

    Each rank writes ``<run dir>/checksums_rank<r>.json`` at the end of fit: a list of
    ``[epoch, batch, mode, alpha checksum, weights checksum]``.
    """

    def __init__(self) -> None:
        self.records: list[list] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            alpha = sum(float((p.double() * (1 + torch.arange(p.numel()).view_as(p))).sum())
                        for p in pl_module.net.arch_parameters())
            weights = sum(float(p.double().sum()) for p in pl_module.net.weight_parameters())
        self.records.append([trainer.current_epoch, batch_idx, pl_module.arch_gradient.name, alpha, weights])

    def on_fit_end(self, trainer, pl_module) -> None:
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        path = Path(trainer.default_root_dir) / f"checksums_rank{rank}.json"
        path.write_text(json.dumps({"world_size": trainer.world_size, "records": self.records}))


def assert_same_final_state(expected_run: Path, actual_run: Path) -> None:
    """Every tensor of the two runs' ``checkpoints/last.ckpt`` state dicts is bitwise equal."""
    expected, actual = (torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
                        for run in (expected_run, actual_run))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
