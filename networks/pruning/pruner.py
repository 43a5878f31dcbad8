"""From a network and its channel scores to a :class:`~networks.pruning.structure.Structure` (arXiv:1909.12579).

Builds the multiply-add tables once (``meta`` device networks: no memory, no initialisation), runs the
bisection of :mod:`networks.pruning.search`, and measures the pruned and reference networks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from networks.pruning.cost import MultiplyAddTable, meta_network
from networks.pruning.families import PrunableFamily
from networks.pruning.importance import CRITERIA, channel_scores
from networks.pruning.search import (
    DEFAULT_MAX_ITERATIONS,
    OFFICIAL_TOLERANCE,
    check_target,
    search_structure,
)
from networks.pruning.structure import Structure
from visionsuite.complexity import count_parameters


@dataclass(frozen=True)
class PruneSettings:
    """How a network is pruned: the target and how to reach it.

    Attributes:
        target: multiply-add reduction relative to the reference (unexpanded) network, in (0, 1).
        criterion: channel importance (``gates``, ``bn_scale``, ``filter_l1``).
        reference_width_multiplier: width of the unexpanded reference (1.0: the default network).
        max_iterations, tolerance: the bisection's stopping rule (official: 10 steps, 0.001 relative).
    """

    target: float = 0.5
    criterion: str = "gates"
    reference_width_multiplier: float = 1.0
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    tolerance: float = OFFICIAL_TOLERANCE

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any] | None) -> PruneSettings:
        """Validated settings from a mapping of the fields above.

        Raises:
            ValueError: naming the setting first: an unknown one, or a value out of range.
        """
        settings = dict(settings or {})
        for name in sorted(settings):
            if name not in cls.__dataclass_fields__:
                raise ValueError(f"{name}: not a prune setting; the settings are {sorted(cls.__dataclass_fields__)}.")
        result = cls(**settings)
        check_target(result.target)
        if result.criterion not in CRITERIA:
            raise ValueError(f"criterion={result.criterion!r}: use one of {', '.join(CRITERIA)}.")
        if result.max_iterations < 1:
            raise ValueError(f"max_iterations={result.max_iterations}: must be >= 1.")
        if result.tolerance <= 0:
            raise ValueError(f"tolerance={result.tolerance}: must be > 0.")
        if result.reference_width_multiplier <= 0:
            raise ValueError(f"reference_width_multiplier={result.reference_width_multiplier}: must be > 0.")
        return result


def reference_cost(family: PrunableFamily, num_classes: int, width_multiplier: float,
                   input_size: int) -> tuple[int, int]:
    """(parameters, multiply-adds) of the family's default network at ``width_multiplier``."""
    network = meta_network(family.build, num_classes, width_multiplier=width_multiplier)
    table = MultiplyAddTable(network, family.groups_of(network), input_size)
    return count_parameters(network), table.multiply_adds(family.default_channels(width_multiplier))


def prune_network(network: nn.Module, family: PrunableFamily, settings: PruneSettings, *, num_classes: int,
                  width_multiplier: float, input_size: int) -> Structure:
    """Rank ``network``'s channels by ``settings.criterion`` and cut them to the target (Sec. 3.3)."""
    groups = family.groups_of(network)
    scores = channel_scores(network, groups, settings.criterion)
    full = [len(layer) for layer in scores]
    table_network = meta_network(family.build, num_classes, channels=full, width_multiplier=width_multiplier)
    table = MultiplyAddTable(table_network, family.groups_of(table_network), input_size)
    reference_params, reference_madds = reference_cost(family, num_classes, settings.reference_width_multiplier,
                                                       input_size)
    result = search_structure(scores, table, reference_madds, settings.target, settings.max_iterations,
                              settings.tolerance)
    channels = [len(indices) for indices in result.kept]
    pruned = meta_network(family.build, num_classes, channels=channels, width_multiplier=width_multiplier)
    return Structure(
        backbone=family.name, num_classes=num_classes, input_size=input_size, width_multiplier=width_multiplier,
        reference_width_multiplier=settings.reference_width_multiplier, layers=[group.gate for group in groups],
        full_channels=full, channels=channels, kept=result.kept, criterion=settings.criterion,
        target=settings.target, achieved=round(result.achieved, 6), params=count_parameters(pruned),
        madds=result.madds, reference_params=reference_params, reference_madds=reference_madds,
        iterations=result.iterations, extra={"prune_ratio": result.prune_ratio})


__all__ = ["PruneSettings", "prune_network", "reference_cost"]
