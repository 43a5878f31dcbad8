"""The files and pictures of an architecture search, written by a callback the search module declares.

:class:`ArchitectureWriter` (returned by ``ArchitectureSearch.configure_callbacks``) writes into the run
directory (``trainer.default_root_dir``):

* every epoch: ``architecture/epoch_XXX/`` with ``genotype.txt`` and, every ``draw_every_n_epochs`` epochs
  and at the last one, ``arch_weights.png`` (heat map of softmax(alpha); DARTS arXiv:1806.09055 Fig. 3-4 style),
  ``normal_cell.png`` and ``reduction_cell.png``; the same pictures and text go to the loggers that take them;
* at the end of fit: ``genotype.json`` (format of ``networks.nas.genotypes``, with metadata), the final
  ``genotype.txt`` and pictures, and for a non-final P-DARTS stage the surviving candidates
  (:class:`~lightning_modules.pdarts_stage.ProgressiveStage`). The module's ``artifacts`` then name them
  (for ``result.json`` and later phases: ``inputs: {model.genotype: search.genotype}``) and its
  ``summary_notes`` carry the readable genotype.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from networks.nas.genotypes import Genotype, save_genotype_json
from networks.nas.search_space import SearchNetwork
from networks.nas.visualize import genotype_text, plot_arch_weights, plot_cell
from visionsuite.module import send_images, send_text

log = logging.getLogger(__name__)

ARCHITECTURE_DIR = "architecture"
GENOTYPE_FILE = "genotype.json"
IMAGE_FILES = {"arch_weights": "arch_weights.png", "normal_cell": "normal_cell.png",
               "reduction_cell": "reduction_cell.png"}


class ArchitectureWriter(pl.Callback):
    """Per-epoch architecture snapshots and the final genotype of an ``ArchitectureSearch`` (module docstring).

    Args:
        draw_every_n_epochs: draw the heat map and cell diagrams every n epochs (0: only at the end);
            ``genotype.txt`` is written every epoch.
        experiment: name recorded in ``genotype.json``.
    """

    def __init__(self, draw_every_n_epochs: int = 1, experiment: str | None = None) -> None:
        self.draw_every_n_epochs = int(draw_every_n_epochs)
        self.experiment = experiment

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        epoch = trainer.current_epoch
        every = self.draw_every_n_epochs
        last = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        draw = bool(every) and ((epoch + 1) % every == 0 or last)
        genotype = pl_module.genotype()
        if trainer.is_global_zero:
            text = genotype_text(genotype)
            log.info("Epoch %d genotype:\n%s", epoch, text)
            folder = Path(trainer.default_root_dir) / ARCHITECTURE_DIR / f"epoch_{epoch:03d}"
            files = write_search_pictures(pl_module.net, genotype, folder, f"epoch {epoch}", draw=draw)
            publish_to_loggers(trainer.loggers, files, text, pl_module.global_step)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """Write ``genotype.json``, the final pictures and a stage's survivors (rank 0); name them as artifacts."""
        run_dir = Path(trainer.default_root_dir)
        genotype = pl_module.genotype()
        stage = pl_module.stage
        files = {name: run_dir / file for name, file in IMAGE_FILES.items()}
        files["genotype_text"] = run_dir / "genotype.txt"
        if stage is not None:
            files.update(stage.output_files(run_dir))
        if trainer.is_global_zero:
            write_search_pictures(pl_module.net, genotype, run_dir, "final architecture", draw=True)
            self._write_genotype_json(pl_module, genotype, run_dir / GENOTYPE_FILE)
            log.info("Search finished: %s\n%s", run_dir / GENOTYPE_FILE, genotype_text(genotype))
            if stage is not None and "candidates" in files:
                text = stage.write_survivors(pl_module.net, run_dir, self.experiment)
                publish_to_loggers(trainer.loggers, {"surviving_ops": files["surviving_ops"]}, text,
                                   pl_module.global_step)
        trainer.strategy.barrier("genotype_written")
        pl_module.artifacts.update({"genotype": str(run_dir / GENOTYPE_FILE),
                                    **{name: str(path) for name, path in files.items()}})
        pl_module.summary_notes["genotype"] = readable_genotype(genotype)

    def _write_genotype_json(self, pl_module: Any, genotype: Genotype, path: Path) -> None:
        hparams, net, stage = pl_module.hparams, pl_module.net, pl_module.stage
        save_genotype_json(
            genotype, path,
            experiment=self.experiment,
            epochs_trained=int(pl_module.current_epoch),
            arch_gradient=hparams.arch_gradient,
            eta=hparams.eta if hparams.arch_gradient == "amended" else None,
            arch_weights={cell: value.cpu().numpy().round(6) for cell, value in net.arch_weights().items()},
            candidate_ops=pl_module.candidate_ops_lists(),
            partial_channel_k=hparams.partial_channel_k,
            edge_weights=({cell: value.cpu().numpy().round(6) for cell, value in net.edge_weights().items()}
                          if net.edge_normalization else None),
            stage=stage.plan.stage if stage else None,
            max_skip_connect=stage.max_skip_connect if stage else None,
        )


def readable_genotype(genotype: Genotype) -> str:
    """The node-by-node lines of :func:`genotype_text`, without the ``Genotype(...)`` literal."""
    return genotype_text(genotype).split("Genotype(")[0].strip()


def write_search_pictures(network: SearchNetwork, genotype: Genotype, folder: Path, title: str,
                          draw: bool = True) -> dict[str, Path]:
    """``genotype.txt`` and (when ``draw``) the heat map and both cell diagrams into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text_file = folder / "genotype.txt"
    text_file.write_text(genotype_text(genotype), encoding="utf-8")
    files = {"genotype_text": text_file}
    if draw:
        weights = {cell: value.cpu().numpy() for cell, value in network.arch_weights().items()}
        files["arch_weights"] = plot_arch_weights(weights, network.candidates, folder / IMAGE_FILES["arch_weights"],
                                                  nodes=network.nodes, title=title)
        files["normal_cell"] = plot_cell(genotype, "normal", folder / IMAGE_FILES["normal_cell"],
                                         title=f"normal cell ({title})")
        files["reduction_cell"] = plot_cell(genotype, "reduce", folder / IMAGE_FILES["reduction_cell"],
                                            title=f"reduction cell ({title})")
    return files


def publish_to_loggers(loggers: Sequence[Any], files: Mapping[str, Path], text: str, step: int) -> list[str]:
    """Send the pictures (``search/<name>``) and the genotype text (``search/genotype``) to the loggers that
    take them (:func:`visionsuite.module.send_images` / ``send_text``); return ``logger:name`` for each."""
    sent = []
    for name, path in files.items():
        if path.suffix == ".png":
            sent += [f"{kind}:{name}" for kind in send_images(loggers, f"search/{name}", [path], step)]
    sent += [f"{kind}:genotype" for kind in send_text(loggers, "search/genotype", text, step)]
    return sent


__all__ = ["ARCHITECTURE_DIR", "GENOTYPE_FILE", "ArchitectureWriter", "publish_to_loggers", "readable_genotype",
           "write_search_pictures"]
