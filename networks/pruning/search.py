"""FLOPs-exact structure search of Pruning from Scratch (arXiv:1909.12579, Sec. 3.3; official ``prune_model.py``).

All channel scores (the learned gates, or a baseline's importance) are ranked globally; a bisection on the
global prune ratio in [0, 1] keeps the top ``round(N * (1 - ratio))`` channels, each layer keeping its own
top-ranked ones, until the multiply-add reduction relative to the UNEXPANDED reference network is within
``tolerance`` (relative, official 0.001) of the target, for at most ``max_iterations`` steps (official 10;
our default 30, see ``DEFAULT_MAX_ITERATIONS``).
Costs come from a :class:`~networks.pruning.cost.MultiplyAddTable`: no network is rebuilt per step.

Our one addition: a layer whose every channel falls below the cut keeps its best channel (the official code
would build a zero-width convolution there and fail).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from networks.pruning.cost import MultiplyAddTable

OFFICIAL_MAX_ITERATIONS = 10
OFFICIAL_TOLERANCE = 0.001
# At the official expansion (ResNet-110, -e 80) 10 halvings can stop ~2% short of the target (the prune ratio
# sits near 0.98, where one step of 2^-10 moves many channels); we keep halving until the official tolerance
# is met, up to this many steps.
DEFAULT_MAX_ITERATIONS = 30


@dataclass(frozen=True)
class SearchResult:
    """Kept channel indices per layer, their multiply-adds and the achieved reduction."""

    kept: list[list[int]]
    madds: int
    achieved: float
    iterations: int
    prune_ratio: float
    keep: int = 0


def check_target(target: float) -> float:
    """A reduction target must lie strictly between 0 and 1 (a ``ValueError`` naming ``target`` otherwise)."""
    target = float(target)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target={target}: the multiply-add reduction target must be in (0, 1), e.g. 0.5 to halve "
                         "the multiply-adds of the unexpanded network.")
    return target


class GlobalRanking:
    """All channel scores sorted once (stable: ties keep the earlier channel, so structures are reproducible);
    each candidate of the bisection is then a prefix of the order."""

    def __init__(self, scores: Sequence[torch.Tensor]) -> None:
        self.scores = [layer.detach().float().flatten().cpu() for layer in scores]
        self.lengths = [len(layer) for layer in self.scores]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        flat = torch.cat(self.scores)
        self.order = torch.sort(flat, descending=True, stable=True).indices.numpy()
        self.layer_of_rank = np.repeat(np.arange(len(self.lengths)), self.lengths)[self.order]
        self.total = len(flat)

    def widths(self, keep: int) -> list[int]:
        """Channels each layer keeps when the ``keep`` best over all layers are kept (at least one each)."""
        counts = np.bincount(self.layer_of_rank[:keep], minlength=len(self.lengths))
        return np.maximum(counts, 1).tolist()

    def kept(self, keep: int) -> list[list[int]]:
        """The kept channel indices of each layer (sorted), for the same rule as :meth:`widths`."""
        chosen = np.sort(self.order[:keep])
        layer = np.searchsorted(self.offsets, chosen, side="right") - 1
        kept: list[list[int]] = [[] for _ in self.lengths]
        for index, owner in zip(chosen.tolist(), layer.tolist(), strict=True):
            kept[owner].append(index - int(self.offsets[owner]))
        for owner, indices in enumerate(kept):
            if not indices:
                indices.append(int(torch.argmax(self.scores[owner])))
        return kept


def keep_top_channels(scores: Sequence[torch.Tensor], keep: int) -> list[list[int]]:
    """Indices each layer keeps when the ``keep`` highest scores over all layers are kept (at least one each)."""
    return GlobalRanking(scores).kept(keep)


def search_structure(scores: Sequence[torch.Tensor], table: MultiplyAddTable, reference_madds: int, target: float,
                     max_iterations: int = DEFAULT_MAX_ITERATIONS,
                     tolerance: float = OFFICIAL_TOLERANCE) -> SearchResult:
    """Bisection on the global prune ratio (see the module docstring).

    Args:
        scores: one score tensor per channel group (higher = more important), widths of the pruned network.
        table: multiply-adds of that network as a function of the group widths.
        reference_madds: multiply-adds of the unexpanded reference network.
        target: the requested reduction ``1 - madds / reference_madds``, in (0, 1).
        max_iterations, tolerance: the stopping rule (official: 10 steps, 0.001 relative).

    Returns:
        The closest structure met (the first within tolerance).

    Raises:
        ValueError: ``target=...``: outside (0, 1) or beyond what the network can reach (the message gives the
            closest achievable reduction).
    """
    target = check_target(target)
    ranking = GlobalRanking(scores)
    total = ranking.total

    def evaluate(keep: int) -> tuple[int, int, float]:
        madds = table.multiply_adds(ranking.widths(keep))
        return keep, madds, 1.0 - madds / reference_madds

    smallest = evaluate(0)[2]
    largest = evaluate(total)[2]
    if target > smallest + tolerance * target or target < largest - tolerance * target:
        closest = smallest if target > smallest else largest
        raise ValueError(f"target={target}: the expanded network reaches multiply-add reductions between "
                         f"{largest:.4f} (keeping every channel) and {smallest:.4f} (one channel per layer) relative "
                         f"to the reference; the closest achievable reduction is {closest:.4f}. Lower the target or "
                         "change the expansion (the network's width_multiplier).")
    low, high = 0.0, 1.0
    best: SearchResult | None = None
    for iteration in range(1, max_iterations + 1):
        ratio = (low + high) / 2
        keep, madds, achieved = evaluate(round(total * (1 - ratio)))
        if best is None or abs(achieved - target) < abs(best.achieved - target):
            best = SearchResult([], madds, achieved, iteration, ratio, keep)
        if abs(achieved - target) / target <= tolerance:
            break
        if achieved > target:
            high = ratio
        else:
            low = ratio
    assert best is not None
    return replace(best, kept=ranking.kept(best.keep))


__all__ = ["DEFAULT_MAX_ITERATIONS", "OFFICIAL_MAX_ITERATIONS", "OFFICIAL_TOLERANCE", "GlobalRanking", "SearchResult",
           "check_target", "keep_top_channels", "search_structure"]
