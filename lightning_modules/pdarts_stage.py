"""The lifecycle of one P-DARTS stage around the bilevel search (Chen et al., arXiv:1904.12760, Sec. 3.2-3.3).

:class:`ProgressiveStage` holds what a stage adds to a DARTS search, apart from the bilevel step of
:class:`~lightning_modules.nas_search.ArchitectureSearch`:

* the stage's depth (``layers[stage - 1]`` cells) and its candidate operations (the previous stage's
  ``candidates.json``), fixed when the search network is built;
* the skip-connect dropout, set at the start of every epoch (initial rate of the stage, decayed; Sec. 3.3);
* the checkpoint's record of the stage, so a checkpoint cannot be resumed into another stage;
* at the end of a non-final stage: dropping the weakest candidates of every edge (Sec. 3.2) and writing the
  survivors (``candidates.json``, ``candidates.txt``, ``surviving_ops.png``) for the next stage.

The final stage's genotype keeps at most ``max_skip_connect`` skip-connects in the normal cell
(:meth:`ProgressiveStage.max_skip_connect`, used when the genotype is derived).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from networks.nas.progressive import (
    StagePlan,
    drop_weakest,
    save_candidates_json,
    skip_dropout_rate,
    stage_plan,
)
from networks.nas.search_space import SearchNetwork, edge_inputs, normalize_candidate_ops
from networks.nas.visualize import plot_arch_weights, state_name
from visionsuite.errors import ConfigError

log = logging.getLogger(__name__)

CANDIDATES_FILE = "candidates.json"


class ProgressiveStage:
    """One stage of a P-DARTS search (see the module docstring).

    Args:
        plan: the stage's settings (:func:`~networks.nas.progressive.stage_plan`).
        arch_warmup_epochs: epochs without architecture updates (the dropout decay starts after them).
    """

    def __init__(self, plan: StagePlan, arch_warmup_epochs: int = 0) -> None:
        self.plan = plan
        self.arch_warmup_epochs = int(arch_warmup_epochs)

    @classmethod
    def from_config(cls, progressive: Any, candidate_ops: Any, nodes: int,
                    arch_warmup_epochs: int = 0) -> ProgressiveStage | None:
        """The stage described by ``model.progressive`` (None: a single-stage search)."""
        if progressive is None:
            return None
        if not isinstance(progressive, Mapping):
            raise ConfigError(f"model.progressive must be a mapping (stage, layers, drop_ops, skip_dropout, "
                              f"max_skip_connect) or null, got {progressive!r}.")
        normalized = normalize_candidate_ops(candidate_ops, nodes)
        plan = stage_plan(progressive, min(len(normalized[cell][0]) for cell in normalized))
        return cls(plan, arch_warmup_epochs)

    @property
    def layers(self) -> int:
        return self.plan.layers

    @property
    def max_skip_connect(self) -> int | None:
        return self.plan.max_skip_connect

    # ------------------------------------------------------------------ during the stage
    def start_epoch(self, network: SearchNetwork, epoch: int, max_epochs: int) -> float:
        """Set the skip-connect dropout of ``epoch`` on ``network``; return the rate."""
        rate = skip_dropout_rate(self.plan.skip_dropout, epoch, max_epochs, self.arch_warmup_epochs)
        network.set_skip_dropout(rate)
        return rate

    # ------------------------------------------------------------------ checkpoints
    def state(self, network: SearchNetwork) -> dict[str, Any]:
        """What a checkpoint records of the stage: its number and the candidate operations searched."""
        return {"stage": self.plan.stage, "candidate_ops": candidate_ops_lists(network)}

    @staticmethod
    def check_resumable(saved: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> None:
        """Refuse a checkpoint of another stage or candidate set (``checkpoint["progressive"]``)."""
        if saved != current and (saved is not None or current is not None):
            raise ConfigError(
                "The checkpoint belongs to another search stage or candidate set: it holds "
                f"{_describe_stage(saved)}, this run is {_describe_stage(current)}. Resume a P-DARTS stage from "
                "its own checkpoints/last.ckpt (resume=<run dir> does)."
            )

    # ------------------------------------------------------------------ at the end of the stage
    def output_files(self, run_dir: Path) -> dict[str, Path]:
        """The files a non-final stage hands on (empty for the final stage)."""
        if self.plan.is_last:
            return {}
        return {"candidates": run_dir / CANDIDATES_FILE, "surviving_ops": run_dir / "surviving_ops.png",
                "candidates_text": run_dir / "candidates.txt"}

    def write_survivors(self, network: SearchNetwork, run_dir: Path, experiment: str | None) -> str:
        """Drop the weakest candidates of every edge; write ``candidates.json``, the text and the picture.

        Returns the survivors as text (one line per edge). Call on one process only.
        """
        files = self.output_files(run_dir)
        weights = network.arch_weights()
        survivors = {cell: drop_weakest(weights[cell], network.candidates[cell], self.plan.drop_ops)
                     for cell in network.candidates}
        save_candidates_json(files["candidates"], survivors, stage=self.plan.stage, experiment=experiment,
                             dropped_per_edge=self.plan.drop_ops)
        text = candidates_text(survivors, network.nodes)
        files["candidates_text"].write_text(text, encoding="utf-8")
        kept = {cell: _kept_weights(weights[cell], network.candidates[cell], survivors[cell]) for cell in survivors}
        plot_arch_weights(kept, survivors, files["surviving_ops"], nodes=network.nodes,
                          title=f"stage {self.plan.stage}: surviving operations (weights at the end of the stage)")
        log.info("Stage %d: %d candidates per edge survive:\n%s", self.plan.stage, len(survivors["normal"][0]), text)
        return text


def candidate_ops_lists(network: SearchNetwork) -> dict[str, list[list[str]]]:
    """The candidate operations of every edge of ``network``, as plain lists."""
    return {cell: [list(ops) for ops in per_edge] for cell, per_edge in network.candidates.items()}


def candidates_text(candidates: Mapping[str, Sequence[Sequence[str]]], nodes: int) -> str:
    """One line per edge: ``c_{k-2} -> 0: sep_conv_3x3, skip_connect, ...`` for both cell types."""
    lines = []
    for cell in ("normal", "reduce"):
        lines.append(f"{cell} cell:")
        for (node, state), ops in zip(edge_inputs(nodes), candidates[cell], strict=True):
            lines.append(f"  {state_name(state)} -> {node}: {', '.join(ops)}")
    return "\n".join(lines) + "\n"


def _describe_stage(state: Mapping[str, Any] | None) -> str:
    if state is None:
        return "no P-DARTS stage"
    sizes = sorted({len(ops) for per_edge in state["candidate_ops"].values() for ops in per_edge})
    return f"stage {state['stage']} with {'/'.join(map(str, sizes))} candidates per edge"


def _kept_weights(weights: torch.Tensor, before: Sequence[Sequence[str]], after: Sequence[Sequence[str]]) -> np.ndarray:
    """The weights of the surviving candidates, edge by edge, in the survivors' order."""
    matrix = weights.cpu().numpy()
    return np.array([[matrix[edge, list(before[edge]).index(op)] for op in ops] for edge, ops in enumerate(after)])


__all__ = ["CANDIDATES_FILE", "ProgressiveStage", "candidate_ops_lists", "candidates_text"]
