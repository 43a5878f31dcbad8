"""OmegaConf resolvers used by ``conf/`` (registered on import, before Hydra reads the config)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def _run_dir(resume: str | None, fresh_dir: str) -> str:
    """``hydra.run.dir``: the directory of the run being resumed, else a fresh time-stamped one."""
    if resume:
        return str(Path(resume).expanduser().resolve())
    return fresh_dir


def _multirun_job() -> tuple[str, int] | None:
    """``(sweep dir, job number)`` when this process runs a job of a Hydra multirun, else ``None``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return str(hydra_cfg.sweep.dir), int(hydra_cfg.job.num)


def _sweep_group(log_dir: str) -> str | None:
    """``logger.wandb.group``: the sweep folder (relative to ``paths.log_dir``) for every job of a multirun."""
    job = _multirun_job()
    if job is None:
        return None
    return os.path.relpath(Path(job[0]).resolve(), Path(log_dir).resolve())


def _job_name(task_name: str) -> str:
    """``logger.wandb.name``: the task name, plus ``-<job number>`` in a multirun."""
    job = _multirun_job()
    return task_name if job is None else f"{task_name}-{job[1]}"


def _experiment_name(*, _root_: Any) -> str:
    """``task_name``: the chosen experiment's name (``experiment=pdarts_cifar10`` -> ``pdarts_cifar10``).

    Read from the running job's Hydra config, or, while Hydra itself resolves a sweep directory (before any job
    has its config), from the ``hydra`` node of the config being resolved.
    """
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("experiment")
    else:
        choice = OmegaConf.select(_root_, "hydra.runtime.choices.experiment", default=None)
    return str(choice) if choice else "run"


def _call(function: str, *arguments: Any) -> Any:
    """``${call:package.module.function,arg,...}``: the value a method's own function computes from other config
    values (e.g. Pruning from Scratch's Scratch-B epochs from the pruned structure), without the core naming it."""
    from hydra.utils import get_method

    return get_method(function)(*arguments)


def register_resolvers() -> None:
    """Register the suite's resolvers once (safe to call repeatedly)."""
    for name, function in (("run_dir", _run_dir), ("sweep_group", _sweep_group), ("job_name", _job_name),
                           ("call", _call), ("experiment_name", _experiment_name)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


register_resolvers()
