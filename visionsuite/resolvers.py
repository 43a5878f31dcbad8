"""OmegaConf resolvers used by ``conf/`` (registered on import, before Hydra reads the config)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def _run_dir(resume: str | None, fresh_dir: str) -> str:
    """``hydra.run.dir``: the directory of the run being resumed, else a fresh time-stamped one."""
    if resume:
        return str(Path(resume).expanduser().resolve())
    return fresh_dir


def register_resolvers() -> None:
    """Register the suite's resolvers once (safe to call repeatedly)."""
    if not OmegaConf.has_resolver("run_dir"):
        OmegaConf.register_new_resolver("run_dir", _run_dir)


register_resolvers()
