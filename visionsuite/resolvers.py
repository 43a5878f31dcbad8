"""OmegaConf resolvers used by ``conf/`` (registered on import, before Hydra reads the config)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def _run_dir(resume: str | None, fresh_dir: str) -> str:
    """``hydra.run.dir``: the directory of the run being resumed, else a fresh time-stamped one."""
    if resume:
        return str(Path(resume).expanduser().resolve())
    return fresh_dir


def _budget_epochs(epochs: int, structure: str | None, budget_training: bool) -> int:
    """``trainer.max_epochs`` of a retrain phase: Scratch-B ``epochs / (1 - p)`` (Pruning from Scratch)."""
    from networks.pruning.structure import budget_epochs

    return budget_epochs(int(epochs), structure, bool(budget_training))


def _epoch_milestones(max_epochs: int, fractions: list[float]) -> list[int]:
    """``int(max_epochs * f)`` for each fraction (step schedules given as fractions of the run)."""
    return [int(int(max_epochs) * float(fraction)) for fraction in fractions]


def register_resolvers() -> None:
    """Register the suite's resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver("run_dir", _run_dir)
    if not OmegaConf.has_resolver("budget_epochs"):
        OmegaConf.register_new_resolver("budget_epochs", _budget_epochs)
    if not OmegaConf.has_resolver("epoch_milestones"):
        OmegaConf.register_new_resolver("epoch_milestones", _epoch_milestones)


register_resolvers()
