"""Phases: several jobs run in sequence by one command, each in its own sub-folder of the run directory.

An experiment that sets ``phases`` is a chain. Each phase names the experiment it runs, the artifacts it
takes from earlier phases, and extra overrides::

    phases:
      search:                          # -> <run dir>/search/
        experiment: darts_cifar10      # any experiment; it is also runnable alone
      train:                           # -> <run dir>/train/
        experiment: nas_train_cifar10
        inputs:
          model.genotype: search.genotype   # config key <- artifact `genotype` of phase `search`
        overrides: []                  # extra overrides for this phase only

Rules:
- A phase writes ``result.json`` (metrics + artifact paths) into its folder when it finishes; a phase
  whose ``result.json`` exists is skipped, so ``resume=<run dir>`` continues at the first unfinished
  phase, and that phase continues from its own ``checkpoints/last.ckpt``.
- ``phases.<name>.use=<path>`` skips a phase and hands ``<path>`` to later phases as its artifact
  (``phases.<name>.use_artifact`` names which one, default the first ``inputs`` that refers to it).
- Overrides given on the command line (``trainer=ddp_cpu``, ``seed=1``, ``paths.data_dir=...``) reach
  every phase whose config has that key; per-phase ones go in ``phases.<name>.overrides``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from visionsuite.errors import ConfigError
from visionsuite.pipeline import LAST_CHECKPOINT, run_recorded_job
from visionsuite.reporting import RESULT_FILE, print_summary, write_result
from visionsuite.resume import override_key
from visionsuite.run_log import also_log_to

log = logging.getLogger(__name__)

ROOT_CONFIG = "run"
_CHAIN_ONLY_KEYS = ("experiment", "resume", "phases", "hydra", "mode", "ckpt_path", "ckpt_format", "task_name")
_CHAIN_ONLY_EXACT = ("paths.output_dir",)
_PHASE_KEYS = {"experiment", "inputs", "overrides", "use", "use_artifact"}


def run_phases(cfg: DictConfig) -> dict[str, Any]:
    """Run every phase of ``cfg.phases`` in order, skipping finished ones; return the chain's result."""
    run_dir = Path(cfg.paths.output_dir)
    phases = _validated(cfg.phases)
    artifacts: dict[str, dict[str, str]] = {}
    report: list[dict[str, str]] = []
    last_result: dict[str, Any] = {}
    for name, spec in phases.items():
        phase_dir = run_dir / name
        result_file = phase_dir / RESULT_FILE
        if spec.get("use"):
            artifacts[name] = {_used_artifact_name(name, spec, phases): str(spec.use)}
            report.append({"name": name, "status": "given", "output_dir": str(spec.use)})
            continue
        if result_file.is_file():
            last_result = json.loads(result_file.read_text())
            artifacts[name] = last_result.get("artifacts", {})
            report.append({"name": name, "status": "finished earlier", "output_dir": str(phase_dir)})
            log.info("Phase %s finished earlier (%s): skipped.", name, result_file)
            continue
        log.info("Phase %s: experiment=%s in %s", name, spec.experiment, phase_dir)
        phase_cfg = compose_phase(cfg, name, spec, phase_dir, artifacts)
        phase_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(phase_cfg, phase_dir / "config.yaml")
        with also_log_to(phase_dir / "run.log"):
            last_result = run_recorded_job(phase_cfg, announce=False)
        artifacts[name] = last_result.get("artifacts", {})
        report.append({"name": name, "status": "ran", "output_dir": str(phase_dir)})

    result = {
        "task_name": cfg.task_name,
        "mode": "phases",
        "output_dir": str(run_dir),
        "metrics": last_result.get("metrics", {}),
        "artifacts": {f"{phase}.{key}": path for phase, items in artifacts.items() for key, path in items.items()},
        "phases": report,
    }
    write_result(run_dir, result)
    print_summary(result)
    return result


def compose_phase(cfg: DictConfig, name: str, spec: DictConfig, phase_dir: Path,
                  artifacts: dict[str, dict[str, str]]) -> DictConfig:
    """The full config of one phase: its experiment, its inputs, then the applicable user overrides."""
    base = [
        f"experiment={spec.experiment}",
        f"task_name={cfg.task_name}/{name}",
        f"seed={cfg.seed}",
        f"paths.output_dir={_quote(phase_dir)}",
    ]
    last = phase_dir / LAST_CHECKPOINT
    if last.is_file():
        log.info("Phase %s continues from %s", name, last)
        base.append(f"ckpt_path={_quote(last)}")
    for key, reference in (spec.get("inputs") or {}).items():
        base.append(f"{key}={_quote(_artifact(reference, artifacts, name))}")
    base += list(spec.get("overrides") or [])
    probe = compose(config_name=ROOT_CONFIG, overrides=base)
    inherited = [override for override in _user_overrides()
                 if _applies_to(override, probe)]
    skipped = set(_user_overrides()) - set(inherited)
    if skipped:
        log.info("Phase %s ignores command-line overrides with no matching key: %s", name, sorted(skipped))
    phase_cfg = compose(config_name=ROOT_CONFIG, overrides=[*base, *inherited])
    _label_wandb_run(phase_cfg, group=_chain_group(cfg), job_type=name)
    return phase_cfg


def _chain_group(cfg: DictConfig) -> str:
    """The W&B group of a chain's phases: its run directory, relative to ``paths.log_dir``."""
    run_dir, log_dir = Path(cfg.paths.output_dir).resolve(), Path(cfg.paths.log_dir).resolve()
    return os.path.relpath(run_dir, log_dir) if run_dir.is_relative_to(log_dir) else str(run_dir)


def _label_wandb_run(phase_cfg: DictConfig, *, group: str, job_type: str) -> None:
    """One W&B run per phase: grouped by the chain, ``job_type`` the phase's name."""
    node = OmegaConf.select(phase_cfg, "logger.wandb")
    if isinstance(node, DictConfig):
        with open_dict(node):
            node.group = group
            node.job_type = job_type


class _PromisedArtifacts(dict):
    """The artifacts a phase will write, as placeholders (what ``mode=show_phases`` composes phases with)."""

    def __init__(self, phase: str) -> None:
        super().__init__()
        self.phase = phase

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return f"<{key} of phase {self.phase}>"


def show_phases(cfg: DictConfig, stream: TextIO | None = None) -> None:
    """Print the effective config of every phase of the chain ``cfg`` (``mode=show_phases``), running nothing.

    A chain's own config (what ``--cfg job`` prints) is only the root the phases start from: each phase composes
    its own experiment, inputs and overrides. Artifacts of phases that have not run yet appear as placeholders.
    """
    stream = stream or sys.stdout
    if not cfg.get("phases"):
        raise ConfigError("mode=show_phases: this experiment has no `phases`; `python run.py <overrides> --cfg job` "
                          "prints its config.")
    run_dir = Path(cfg.paths.output_dir)
    artifacts: dict[str, dict[str, str]] = {}
    for name, spec in _validated(cfg.phases).items():
        phase_dir = run_dir / name
        if spec.get("use"):
            artifacts[name] = {_used_artifact_name(name, spec, cfg.phases): str(spec.use)}
            stream.write(f"# phase {name}: given as {spec.use} (phases.{name}.use), not run\n\n")
            continue
        finished = phase_dir / RESULT_FILE
        phase_cfg = compose_phase(cfg, name, spec, phase_dir, artifacts)
        artifacts[name] = (json.loads(finished.read_text()).get("artifacts", {}) if finished.is_file()
                           else _PromisedArtifacts(name))
        status = "finished earlier, skipped on resume" if finished.is_file() else "runs"
        stream.write(f"# phase {name}: experiment={spec.experiment} in {phase_dir} ({status})\n")
        try:
            text = OmegaConf.to_yaml(phase_cfg, resolve=True)
        except Exception:  # noqa: BLE001 (an interpolation only a running job can resolve)
            text = OmegaConf.to_yaml(phase_cfg)
        stream.write(text + "\n")


def _validated(phases: DictConfig) -> DictConfig:
    if not isinstance(phases, DictConfig):
        raise ConfigError("`phases` must map phase names to {experiment, inputs, overrides}.")
    for name, spec in phases.items():
        if not isinstance(spec, DictConfig) or not spec.get("experiment"):
            raise ConfigError(f"`phases.{name}` needs an `experiment` (the experiment that phase runs).")
        unknown = set(spec.keys()) - _PHASE_KEYS
        if unknown:
            raise ConfigError(f"`phases.{name}` has unknown keys {sorted(unknown)}; allowed: {sorted(_PHASE_KEYS)}.")
    return phases


def _artifact(reference: str, artifacts: dict[str, dict[str, str]], consumer: str) -> str:
    phase, _, artifact = str(reference).partition(".")
    if phase not in artifacts:
        raise ConfigError(f"`phases.{consumer}.inputs` refers to phase `{phase}`, which does not run before it.")
    if artifact not in artifacts[phase]:
        raise ConfigError(f"`phases.{consumer}.inputs`: phase `{phase}` has no artifact `{artifact}`; "
                          f"it wrote: {', '.join(artifacts[phase]) or 'nothing'}.")
    return artifacts[phase][artifact]


def _used_artifact_name(name: str, spec: DictConfig, phases: DictConfig) -> str:
    if spec.get("use_artifact"):
        return str(spec.use_artifact)
    for other in phases.values():
        for reference in (other.get("inputs") or {}).values():
            phase, _, artifact = str(reference).partition(".")
            if phase == name:
                return artifact
    return "artifact"


def _user_overrides() -> list[str]:
    """The command-line overrides of this run that may apply to phases."""
    if not HydraConfig.initialized():
        return []
    return [override for override in HydraConfig.get().overrides.task
            if override_key(override).split(".")[0] not in _CHAIN_ONLY_KEYS
            and override_key(override) not in _CHAIN_ONLY_EXACT]


def _applies_to(override: str, cfg: DictConfig) -> bool:
    """Whether the phase config has the key ``override`` sets (a group override ``model/backbone=x``
    sets the node ``model.backbone``; ``group@package=x`` sets ``package``)."""
    if override.startswith("+"):
        return True
    key = override_key(override)
    key = key.split("@", 1)[1] if "@" in key else key.replace("/", ".")
    return OmegaConf.select(cfg, key, default="__missing__") != "__missing__"


def _quote(value: Any) -> str:
    text = str(value)
    return f"'{text}'" if any(char in text for char in " ,=[]{}()'\"") else text

