"""The files and pictures of a DARTS-family architecture search, written by a callback the search module declares.

:class:`ArchitectureWriter` (returned by :meth:`lightning_modules.nas.ArchitectureSearch.configure_callbacks`)
writes into the run directory (``trainer.default_root_dir``):

* every epoch: ``architecture/epoch_XXX/`` with ``genotype.txt`` and, every ``draw_every_n_epochs`` epochs
  and at the last one, ``arch_weights.png`` (heat map of softmax(alpha); DARTS arXiv:1806.09055 Fig. 3-4 style),
  ``normal_cell.png`` and ``reduction_cell.png``; the same pictures and text go to the loggers that take them;
* at the end of fit: ``genotype.json`` (format of ``networks.nas.genotypes``, with metadata), the final
  ``genotype.txt`` and pictures, and for a non-final P-DARTS stage the surviving candidates (P-DARTS
  arXiv:1904.12760 Sec. 3.2: the weakest ``drop_ops`` candidates of every edge are dropped): ``candidates.json``
  (artifact ``candidates``, the next stage's ``candidate_ops``), ``candidates.txt`` and ``surviving_ops.png``.
  The module's ``artifacts`` then name them (for ``result.json`` and later phases:
  ``inputs: {model.net.genotype: search.genotype}``) and its ``summary_notes`` carry the readable genotype.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from networks.nas.genotypes import Genotype, save_genotype_json
from networks.nas.progressive import StagePlan, candidates_text, drop_weakest, save_candidates_json
from networks.nas.search_space import SearchNetwork
from networks.nas.visualize import genotype_text, plot_arch_weights, plot_cell
from visionsuite.module import send_images, send_text

log = logging.getLogger(__name__)

ARCHITECTURE_DIR = "architecture"
GENOTYPE_FILE = "genotype.json"
CANDIDATES_FILE = "candidates.json"
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
        plan = pl_module.plan
        files = {name: run_dir / file for name, file in IMAGE_FILES.items()}
        files["genotype_text"] = run_dir / "genotype.txt"
        survivors = survivor_files(run_dir) if plan is not None and not plan.is_last else {}
        files.update(survivors)
        if trainer.is_global_zero:
            write_search_pictures(pl_module.net, genotype, run_dir, "final architecture", draw=True)
            self._write_genotype_json(pl_module, genotype, run_dir / GENOTYPE_FILE)
            log.info("Search finished: %s\n%s", run_dir / GENOTYPE_FILE, genotype_text(genotype))
            if survivors:
                text = write_survivors(pl_module.net, plan, survivors, self.experiment)
                publish_to_loggers(trainer.loggers, {"surviving_ops": files["surviving_ops"]}, text,
                                   pl_module.global_step)
        trainer.strategy.barrier("genotype_written")
        pl_module.artifacts.update({"genotype": str(run_dir / GENOTYPE_FILE),
                                    **{name: str(path) for name, path in files.items()}})
        pl_module.summary_notes["genotype"] = readable_genotype(genotype)

    def _write_genotype_json(self, pl_module: Any, genotype: Genotype, path: Path) -> None:
        step, net, plan = pl_module.arch_step, pl_module.net, pl_module.plan
        save_genotype_json(
            genotype, path,
            experiment=self.experiment,
            epochs_trained=int(pl_module.current_epoch),
            arch_gradient=step.gradient,
            eta=step.eta if step.gradient == "amended" else None,
            arch_weights={cell: value.cpu().numpy().round(6) for cell, value in net.arch_weights().items()},
            candidate_ops=pl_module.candidate_ops_lists(),
            partial_channel_k=net.partial_channel_k,
            edge_weights=({cell: value.cpu().numpy().round(6) for cell, value in net.edge_weights().items()}
                          if net.edge_normalization else None),
            stage=plan.stage if plan else None,
            max_skip_connect=plan.max_skip_connect if plan else None,
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


def survivor_files(run_dir: Path) -> dict[str, Path]:
    """The files a non-final P-DARTS stage hands on, by artifact name."""
    return {"candidates": run_dir / CANDIDATES_FILE, "surviving_ops": run_dir / "surviving_ops.png",
            "candidates_text": run_dir / "candidates.txt"}


def write_survivors(network: SearchNetwork, plan: StagePlan, files: Mapping[str, Path],
                    experiment: str | None) -> str:
    """Drop the ``plan.drop_ops`` weakest candidates of every edge (P-DARTS Sec. 3.2); write ``candidates.json``,
    its text and the picture of the survivors' weights into ``files`` (:func:`survivor_files`).

    Returns the survivors as text (one line per edge). Call on one process only.
    """
    weights = network.arch_weights()
    survivors = {cell: drop_weakest(weights[cell], network.candidates[cell], plan.drop_ops)
                 for cell in network.candidates}
    save_candidates_json(files["candidates"], survivors, stage=plan.stage, experiment=experiment,
                         dropped_per_edge=plan.drop_ops)
    text = candidates_text(survivors, network.nodes)
    files["candidates_text"].write_text(text, encoding="utf-8")
    kept = {cell: _kept_weights(weights[cell], network.candidates[cell], survivors[cell]) for cell in survivors}
    plot_arch_weights(kept, survivors, files["surviving_ops"], nodes=network.nodes,
                      title=f"stage {plan.stage}: surviving operations (weights at the end of the stage)")
    log.info("Stage %d: %d candidates per edge survive:\n%s", plan.stage, len(survivors["normal"][0]), text)
    return text


def _kept_weights(weights: torch.Tensor, before: Sequence[Sequence[str]], after: Sequence[Sequence[str]]) -> np.ndarray:
    """The weights of the surviving candidates, edge by edge, in the survivors' order."""
    matrix = weights.cpu().numpy()
    return np.array([[matrix[edge, list(before[edge]).index(op)] for op in ops] for edge, ops in enumerate(after)])


__all__ = ["ARCHITECTURE_DIR", "CANDIDATES_FILE", "GENOTYPE_FILE", "ArchitectureWriter", "publish_to_loggers",
           "readable_genotype", "survivor_files", "write_search_pictures", "write_survivors"]
