"""The prune step of Pruning from Scratch and of its baseline, run when a prunable module is tested.

``mode=test`` on a gate-learning checkpoint (or on a trained full classifier, for the baseline) prunes the
module's network to ``model.prune.target`` before the test loop (arXiv:1909.12579, Sec. 3.3), silences the
pruned channels so the test reports the pruned-but-not-retrained accuracy, and writes into the run directory:
``structure.json`` (the artifact the retrain phase consumes), ``structure.txt`` (the per-layer table, also
printed) and ``structure_channels.png`` (reference, pruned-from and kept widths per layer, plus the widths of
``compare_with``, e.g. the other pipeline's structure), which is also sent to the loggers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl

from networks.pruning.importance import silence_pruned_channels
from networks.pruning.plot import plot_channel_counts
from networks.pruning.pruner import prune_network
from networks.pruning.structure import STRUCTURE_FILE, Structure, load_structure
from visionsuite.errors import ConfigError

log = logging.getLogger(__name__)


class PruneOnTest(pl.Callback):
    """Prune the tested module's network and write its structure (see the module docstring).

    Args:
        compare_with: another ``structure.json`` of the same backbone drawn beside this one.
    """

    def __init__(self, compare_with: str | None = None) -> None:
        self.compare_with = None if compare_with in (None, "", "None", "null") else str(compare_with)
        self.structure: Structure | None = None

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for attribute in ("family", "prune_settings", "net", "width_multiplier"):
            if not hasattr(pl_module, attribute):
                raise ConfigError(f"callbacks.prune_on_test: {type(pl_module).__name__} is not a prunable module "
                                  "(use model=pfs_gate_learning or model=pfs_classifier).")
        structure = prune_network(pl_module.net, pl_module.family, pl_module.prune_settings,
                                  num_classes=int(pl_module.hparams.num_classes), input_size=int(pl_module.hparams.input_size),
                                  width_multiplier=pl_module.width_multiplier)
        silence_pruned_channels(pl_module.net, pl_module.family.groups_of(pl_module.net), structure.kept)
        self.structure = structure
        if not trainer.is_global_zero:
            return
        run_dir = Path(trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        path = structure.save(run_dir / STRUCTURE_FILE)
        table = structure.table()
        (run_dir / "structure.txt").write_text(table + "\n")
        print(table, flush=True)
        plot = self._plot(structure, run_dir / "structure_channels.png")
        pl_module.artifacts.update({"structure": str(path), "structure_table": str(run_dir / "structure.txt"),
                                    "structure_plot": str(plot)})
        if hasattr(pl_module, "log_images"):
            pl_module.log_images("pruning/channels", [plot], [f"{structure.backbone} target {structure.target}"])
        log.info("Pruned %s to %.4f multiply-add reduction (target %s): %s", structure.backbone, structure.achieved,
                 structure.target, path)

    def _plot(self, structure: Structure, path: Path) -> Path:
        from networks.pruning.families import prunable_family

        series = {
            f"reference (x{structure.reference_width_multiplier:g})":
                prunable_family(structure.backbone).default_channels(structure.reference_width_multiplier),
            f"pruned from (x{structure.width_multiplier:g})": structure.full_channels,
            f"kept ({structure.criterion})": structure.channels,
        }
        if self.compare_with is not None:
            other = load_structure(self.compare_with, "callbacks.prune_on_test.compare_with")
            if other.layers != structure.layers:
                raise ConfigError(f"callbacks.prune_on_test.compare_with={self.compare_with}: its layers differ from "
                                  f"this {structure.backbone} structure's.")
            series[f"kept ({other.criterion}, other run)"] = other.channels
        title = (f"{structure.backbone}: {structure.madds / 1e6:.1f}M multiply-adds, reduction "
                 f"{structure.achieved:.3f} (target {structure.target})")
        return plot_channel_counts(series, structure.layers, path, title)


__all__ = ["PruneOnTest"]
