"""Phase tasks: steps of a method that train nothing, run as a function instead of a Trainer loop.

A chain's step that only transforms artifacts (Pruning from Scratch's prune step: gate checkpoint ->
``structure.json``) is a task. An experiment that sets ``task`` runs it instead of building a Trainer::

    task:
      _target_: networks.pruning.tasks.prune_from_gates   # any function taking (cfg, output_dir)
      _partial_: true
      compare_with: null                                   # the task's own options

The pipeline calls ``task(cfg=<the job's config>, output_dir=<run dir>)``; the function builds what it needs with
:func:`visionsuite.instantiate.build` and returns a :class:`TaskResult`, which becomes the job's ``result.json``
(its artifacts reach later phases as any job's do). A task runs alone as well: ``python run.py experiment=<it>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TaskResult:
    """What a task produced: numbers for the summary and ``result.json``, and files by name."""

    metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    #: artifact names a chain's summary shows even when the task is not its last phase
    headline: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)


PhaseTask = Callable[..., TaskResult]  # called as task(cfg=DictConfig, output_dir=Path)

__all__ = ["PhaseTask", "TaskResult"]

