"""P-DARTS progressive search (Chen et al., arXiv:1904.12760): stage plans, operation dropping, skip limit.

P-DARTS searches in stages of growing depth (5, 11, 17 cells on CIFAR), each a fresh search network over
the operations that survived the previous stage (8 -> 5 -> 3 candidates per edge, dropping the lowest
weighted; Sec. 3.2). It regularises the search space (Sec. 3.3) with dropout after skip-connect operations,
at a per-stage initial rate decayed during the stage, and by keeping at most ``M`` skip-connects in the
final normal cell (the weakest skip edges are replaced by their next-best operation).

In the suite each stage is one run of :class:`~lightning_modules.nas.ArchitectureSearch` with its
``progressive`` plan set (a phase of the chain ``conf/experiment/pdarts/chain.yaml``); the stage's search network
has :func:`stage_layers` cells. A stage writes ``candidates.json`` (the surviving operations of every edge, this
module's format), which the next stage's search network reads as its ``candidate_ops``; the last stage's
``genotype.json`` applies the skip limit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from visionsuite.errors import ConfigError
from visionsuite.io import atomic_write_json

from .derivation import derive_cell

__all__ = [
    "CANDIDATES_FORMAT",
    "StagePlan",
    "candidates_text",
    "derive_with_skip_limit",
    "drop_weakest",
    "load_candidates_json",
    "save_candidates_json",
    "skip_dropout_rate",
    "stage_layers",
    "stage_plan",
]

CANDIDATES_FORMAT = "visionsuite-candidates/1"
SKIP_OP = "skip_connect"
_KEYS = {"stage", "layers", "drop_ops", "skip_dropout", "max_skip_connect"}


@dataclass(frozen=True)
class StagePlan:
    """The settings of one P-DARTS stage (``stage`` counts from 1)."""

    stage: int
    num_stages: int
    layers: int
    drop_ops: int
    skip_dropout: float
    max_skip_connect: int | None

    @property
    def is_last(self) -> bool:
        return self.stage == self.num_stages


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}={value!r}: must be an integer >= {minimum}")
    return value


def stage_plan(progressive: Mapping[str, Any], num_candidates: int) -> StagePlan:
    """Validate a P-DARTS plan (the search module's ``progressive``) and return the plan of its ``stage``.

    Args:
        progressive: ``{stage, layers: [...], drop_ops: [...], skip_dropout: [...], max_skip_connect}``,
            one list entry per stage (P-DARTS CIFAR-10: layers [5, 11, 17], drop_ops [3, 2, 2],
            skip_dropout [0.0, 0.4, 0.7], max_skip_connect 2).
        num_candidates: candidate operations per edge entering this stage.

    Raises:
        ValueError: (each message starting with ``progressive``) unknown keys, stage lists of different lengths, a stage outside them, fewer than 3
            cells, a dropout rate outside [0, 1), a negative ``max_skip_connect``, or dropping as many
            operations as the edges hold (at least one must survive).
    """
    unknown = set(progressive) - _KEYS
    if unknown:
        raise ValueError(f"progressive has unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    lists = {}
    for key in ("layers", "drop_ops", "skip_dropout"):
        value = progressive.get(key)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise ValueError(f"progressive.{key} must be a non-empty list with one entry per stage, got {value!r}")
        lists[key] = list(value)
    lengths = {key: len(value) for key, value in lists.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError("progressive: the stage lists must have one entry per stage, but their lengths disagree: "
                         + ", ".join(f"{key} has {n}" for key, n in lengths.items()))
    num_stages = lengths["layers"]
    stage = progressive.get("stage")
    if isinstance(stage, bool) or not isinstance(stage, int) or not 1 <= stage <= num_stages:
        raise ValueError(f"progressive.stage={stage!r}: must be an integer in 1..{num_stages} "
                         f"(one per entry of progressive.layers)")
    for position, layers in enumerate(lists["layers"]):
        _int(layers, f"progressive.layers[{position}]", 3)
    for position, count in enumerate(lists["drop_ops"]):
        _int(count, f"progressive.drop_ops[{position}]", 0)
    for position, rate in enumerate(lists["skip_dropout"]):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"progressive.skip_dropout[{position}]={rate!r}: a dropout rate must be in [0, 1)")
    max_skip = progressive.get("max_skip_connect")
    if max_skip is not None:
        _int(max_skip, "progressive.max_skip_connect", 0)
    remaining_drops = sum(lists["drop_ops"][stage - 1:])
    if remaining_drops >= num_candidates:
        raise ValueError(
            f"progressive.drop_ops={lists['drop_ops']}: stages {stage}..{num_stages} drop {remaining_drops} "
            f"operations per edge, but the edges of stage {stage} have only {num_candidates} candidates; at "
            f"least one must survive (P-DARTS: 8 candidates, drop_ops [3, 2, 2])"
        )
    return StagePlan(stage=stage, num_stages=num_stages, layers=lists["layers"][stage - 1],
                     drop_ops=lists["drop_ops"][stage - 1], skip_dropout=float(lists["skip_dropout"][stage - 1]),
                     max_skip_connect=max_skip)


def stage_layers(progressive: Mapping[str, Any]) -> Any:
    """The depth of a P-DARTS stage's search network: ``progressive["layers"][progressive["stage"] - 1]``.

    The search network's config reads it (``layers: ${call:networks.nas.progressive.stage_layers,
    ${..progressive}}``) so that the stage's depth has one source, the plan. A plan without that entry gets 3 (the
    smallest search network) here, so that the search module's check of the whole plan (:func:`stage_plan`), which
    names the wrong entry of the plan (its ``stage`` or ``layers``), is what the user reads.
    """
    try:
        stage = progressive["stage"]
        if isinstance(stage, int) and not isinstance(stage, bool) and stage >= 1:
            return progressive["layers"][stage - 1]
    except (KeyError, IndexError, TypeError):
        return 3  # a malformed plan: the search module's check names the key
    return 3


#: Per-epoch exponential decay of the skip-connect dropout once architecture updates run (the official
#: P-DARTS train_search.py, ``scale_factor``).
SKIP_DROPOUT_DECAY = 0.2


def skip_dropout_rate(initial: float, epoch: int, epochs: int, arch_warmup_epochs: int = 0) -> float:
    """The skip-connect dropout rate of ``epoch`` (from 0) in a stage of ``epochs`` epochs, as the official
    P-DARTS code decays it (the paper, Sec. 3.3, only says "decayed"): during the ``arch_warmup_epochs`` without
    architecture updates ``initial * (epochs - epoch - 1) / epochs``; from the first architecture update on
    ``initial * exp(-SKIP_DROPOUT_DECAY * (epoch - arch_warmup_epochs))``, which starts again from ``initial``.
    """
    if epochs <= 0:
        return float(initial)
    if epoch < arch_warmup_epochs:
        return float(initial) * (epochs - epoch - 1) / epochs
    return float(initial) * math.exp(-SKIP_DROPOUT_DECAY * (epoch - arch_warmup_epochs))


def drop_weakest(weights: torch.Tensor, candidates: Sequence[Sequence[str]], count: int) -> tuple[tuple[str, ...], ...]:
    """Per edge, remove the ``count`` lowest-weighted candidates (``none`` included, as in stages 1-2 of P-DARTS).

    The survivors keep their order. Ties keep the earlier candidate.
    """
    weights = torch.as_tensor(weights).detach().to("cpu", torch.float64)
    survivors = []
    for edge, ops in enumerate(candidates):
        keep = len(ops) - count
        if keep < 1:
            raise ValueError(f"count={count}: cannot drop {count} of the {len(ops)} candidates of edge {edge}: at "
                             "least one must survive")
        order = sorted(range(len(ops)), key=lambda position: (-float(weights[edge, position]), position))
        survivors.append(tuple(ops[position] for position in sorted(order[:keep])))
    return tuple(survivors)


def derive_with_skip_limit(weights: torch.Tensor, candidates: Sequence[Sequence[str]], nodes: int,
                           max_skip_connect: int | None, edge_weights: torch.Tensor | None = None,
                           cell: str = "normal cell") -> list[tuple[str, int]]:
    """The cell's genotype edges with at most ``max_skip_connect`` skip-connects (P-DARTS Sec. 3.3).

    While the derived cell holds too many, the weakest chosen skip edge loses ``skip_connect`` (its weight is
    masked) and the cell is derived again, so that edge takes its next-best operation (or a stronger edge of
    the same node takes its place). ``None`` means no limit.
    """
    weights = torch.as_tensor(weights).detach().to("cpu", torch.float64).clone()
    edges = derive_cell(weights, candidates, nodes, edge_weights, cell)
    if max_skip_connect is None:
        return edges
    while sum(op == SKIP_OP for op, _ in edges) > max_skip_connect:
        chosen = _chosen_edge_indices(edges, nodes)
        skip_edges = [(float(weights[edge, list(candidates[edge]).index(SKIP_OP)]), edge)
                      for edge, (op, _) in zip(chosen, edges, strict=True) if op == SKIP_OP]
        _, weakest = min(skip_edges)
        weights[weakest, list(candidates[weakest]).index(SKIP_OP)] = float("-inf")
        edges = derive_cell(weights, candidates, nodes, edge_weights, cell)
    return edges


def _chosen_edge_indices(edges: Sequence[tuple[str, int]], nodes: int) -> list[int]:
    """Index (order of ``edge_inputs``) of each derived edge: node ``i`` has edges ``2i``, ``2i+1``."""
    offsets = [sum(2 + earlier for earlier in range(node)) for node in range(nodes)]
    return [offsets[position // 2] + state for position, (_, state) in enumerate(edges)]


def save_candidates_json(path: str | os.PathLike[str], candidates: Mapping[str, Sequence[Sequence[str]]],
                         **metadata: Any) -> Path:
    """Write the surviving operations of every edge (``{"normal": [[...], ...], "reduce": [...]}``)."""
    payload = {"format": CANDIDATES_FORMAT,
               **{cell: [list(ops) for ops in candidates[cell]] for cell in ("normal", "reduce")}}
    if metadata:
        payload["metadata"] = metadata
    return atomic_write_json(path, payload)


def load_candidates_json(path: str | os.PathLike[str]) -> dict[str, list[list[str]]]:
    """Read a ``candidates.json`` written by :func:`save_candidates_json` (validated by the search space).

    Raises:
        ConfigError: naming ``path`` if it is missing, not JSON, or of another format.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such candidates file (a P-DARTS stage writes candidates.json into its "
                          "folder).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a readable JSON candidates file ({error}).") from None
    if not isinstance(data, dict) or data.get("format") != CANDIDATES_FORMAT:
        raise ConfigError(f"{path}: not a candidates file (expected \"format\": \"{CANDIDATES_FORMAT}\").")
    missing = [cell for cell in ("normal", "reduce") if cell not in data]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)}.")
    return {cell: data[cell] for cell in ("normal", "reduce")}


def candidates_text(candidates: Mapping[str, Sequence[Sequence[str]]], nodes: int) -> str:
    """One line per edge: ``c_{k-2} -> 0: sep_conv_3x3, skip_connect, ...`` for both cell types."""
    from .search_space import edge_inputs
    from .visualize import state_name

    lines = []
    for cell in ("normal", "reduce"):
        lines.append(f"{cell} cell:")
        for (node, state), ops in zip(edge_inputs(nodes), candidates[cell], strict=True):
            lines.append(f"  {state_name(state)} -> {node}: {', '.join(ops)}")
    return "\n".join(lines) + "\n"
