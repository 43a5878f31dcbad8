"""Phases: several jobs run in sequence by one command, each in its own sub-folder of the run directory.

An experiment that sets ``phases`` is a chain. Each phase names the experiment it runs, the artifacts it
takes from earlier phases, and extra overrides::

    phases:
      search:                          # -> <run dir>/search/
        experiment: darts_cifar10      # any experiment; it is also runnable alone
      train:                           # -> <run dir>/train/
        experiment: nas_train_cifar10
        inputs:
          model.net.genotype: search.genotype   # config key <- artifact `genotype` of phase `search`
        overrides: []                  # extra overrides for this phase only
        debug_overrides: []            # extra overrides under any debug=... choice (so its artifacts stay whole)

Rules:
- A phase writes ``result.json`` (metrics + artifact paths) into its folder when it finishes; a phase
  whose ``result.json`` exists is skipped, so ``resume=<run dir>`` continues at the first unfinished
  phase, and that phase continues from its own ``checkpoints/last.ckpt``.
- ``phases.<name>.use=<path>`` skips a phase and hands ``<path>`` to later phases as its artifact
  (``phases.<name>.use_artifact`` names which one, default the first ``inputs`` that refers to it).
- Command-line overrides reach the phases as if typed for each phase (:func:`plan_overrides`): a group choice
  (``debug=fast``, ``trainer=ddp_cpu``, ``logger=csv``, ``model/backbone=resnet56``) every phase that has the
  group; ``key=value`` every phase whose config has the key; ``+key=value`` / ``++key=value`` every phase that has
  the key or whose object has a parameter of that name (``+trainer.inference_mode=false``: every phase).
  An override that reaches no phase stops the chain before anything runs; one that skips some phases is listed
  once as a warning. Per-phase overrides go in ``phases.<name>.overrides``.
- ``debug=fast`` (one batch of every loop, checkpoints and logs kept) reaches every phase, so every phase writes its
  artifacts; a phase that needs more than that for what it hands on to be whole says so in
  ``phases.<name>.debug_overrides`` (the logit attack: a few images of each split, every shard walked).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from visionsuite.errors import ConfigError
from visionsuite.pipeline import LAST_CHECKPOINT, run_recorded_job
from visionsuite.reporting import RESULT_FILE, print_summary, write_result
from visionsuite.resume import override_key
from visionsuite.run_log import also_log_to

log = logging.getLogger(__name__)

ROOT_CONFIG = "run"
_CHAIN_ONLY_KEYS = ("experiment", "resume", "phases", "hydra", "mode", "ckpt_path", "ckpt_format", "task_name")
_CHAIN_ONLY_EXACT = ("paths.output_dir",)
_PHASE_KEYS = {"experiment", "inputs", "overrides", "debug_overrides", "use", "use_artifact"}
# What mode=show_phases lists of each phase's trainer: the settings debug=... and trainer=... change (those at
# Lightning's "off" default, None / False / max_steps=-1, are left out).
_SHOWN_TRAINER_KEYS = ("accelerator", "devices", "strategy", "precision", "max_epochs", "max_steps",
                       "limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
                       "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps", "fast_dev_run",
                       "profiler")
_INTERPOLATED_KEY = re.compile(r"\$\{([\w.]+)\}")


def run_phases(cfg: DictConfig) -> dict[str, Any]:
    """Run every phase of ``cfg.phases`` in order, skipping finished ones; return the chain's result."""
    run_dir = Path(cfg.paths.output_dir)
    phases = _validated(cfg.phases)
    plan = plan_overrides(cfg)  # every phase composes, and every override reaches one, before anything runs
    for warning in plan.warnings():
        log.warning(warning)
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
        if (phase_dir / LAST_CHECKPOINT).is_file():
            log.info("Phase %s continues from %s", name, phase_dir / LAST_CHECKPOINT)
        phase_cfg = compose_phase(cfg, name, spec, phase_dir, artifacts, plan.for_phase(name))
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
        "optimized_metric": last_result.get("optimized_metric", cfg.get("optimized_metric")),
        "artifacts": {f"{phase}.{key}": path for phase, items in artifacts.items() for key, path in items.items()},
        "phases": report,
    }
    write_result(run_dir, result)
    print_summary(result)
    return result


def compose_phase(cfg: DictConfig, name: str, spec: DictConfig, phase_dir: Path,
                  artifacts: dict[str, dict[str, str]], planned: list[str]) -> DictConfig:
    """The full config of one phase: its experiment, its inputs and overrides, then ``planned`` (its debug
    overrides, if any, and the chain's command-line overrides that reach it: :meth:`OverridePlan.for_phase`)."""
    phase_cfg, _ = _compose(name, [*_phase_base(cfg, name, spec, phase_dir, artifacts), *planned])
    _label_wandb_run(phase_cfg, group=_chain_group(cfg), job_type=name)
    return phase_cfg


def _phase_base(cfg: DictConfig, name: str, spec: DictConfig, phase_dir: Path,
                artifacts: dict[str, dict[str, str]]) -> list[str]:
    """A phase's own overrides: its experiment, folder, ``phases.<name>.overrides`` and then its inputs (an
    artifact handed on is the most specific value a key can get)."""
    base = [
        f"experiment={spec.experiment}",
        f"task_name={cfg.task_name}/{name}",
        f"seed={cfg.seed}",
        f"paths.output_dir={_quote(phase_dir)}",
    ]
    last = phase_dir / LAST_CHECKPOINT
    if last.is_file():
        base.append(f"ckpt_path={_quote(last)}")
    base += list(spec.get("overrides") or [])
    for key, reference in (spec.get("inputs") or {}).items():
        base.append(f"{key}={_quote(_artifact(reference, artifacts, name))}")
    return base


def _compose(name: str, overrides: list[str]) -> tuple[DictConfig, dict[str, Any]]:
    """Compose a phase's config; return it (without the ``hydra`` node) and its config-group choices."""
    try:
        composed = compose(config_name=ROOT_CONFIG, overrides=overrides, return_hydra_config=True)
    except ConfigCompositionException as error:
        cause = f" ({error.__cause__})" if error.__cause__ is not None else ""
        raise ConfigError(f"phase `{name}` does not compose: {error}{cause}".replace("\n", " ")) from error
    choices = OmegaConf.to_container(composed.hydra.runtime.choices)
    with open_dict(composed):
        del composed["hydra"]
    return composed, dict(choices)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ command-line overrides -> phases
@dataclass
class OverridePlan:
    """Which of the chain's command-line overrides each phase takes (made by :func:`plan_overrides`)."""

    inherited: dict[str, list[str]] = field(default_factory=dict)  # phase -> its overrides, command-line order
    debug: dict[str, list[str]] = field(default_factory=dict)  # phase -> its debug_overrides, when they apply
    skipped: dict[str, tuple[list[str], str]] = field(default_factory=dict)  # override -> (phases skipped, why)
    configs: dict[str, DictConfig] = field(default_factory=dict)  # phase -> its composed config (placeholders)
    choices: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase -> its config-group choices

    def for_phase(self, name: str) -> list[str]:
        """What a phase adds to its own overrides: its debug overrides (under a debug choice), then the
        command-line overrides that reach it (the command line wins)."""
        return [*self.debug.get(name, []), *self.inherited[name]]

    def warnings(self) -> list[str]:
        """One line per override that reaches some phases and not others."""
        return [f"Command-line override `{override}` skips phase{'s' if len(skipped) > 1 else ''} "
                f"{', '.join(skipped)} of this chain ({why}); it reaches "
                f"{', '.join(name for name in self.inherited if override in self.inherited[name])}. "
                f"To set a key of one phase: phases.<name>.overrides."
                for override, (skipped, why) in self.skipped.items()]


def plan_overrides(cfg: DictConfig, overrides: list[str] | None = None) -> OverridePlan:
    """Decide which command-line overrides reach which phases, as if each were typed for each phase.

    * A config-group choice (``debug=fast``, ``trainer=ddp_cpu``, ``logger=csv``, ``model/backbone=resnet56``)
      reaches every phase whose config has that group (``debug`` and the other groups of ``conf/run.yaml``: all).
    * ``key=value`` and ``~key`` reach every phase whose config has ``key``.
    * ``+key=value`` and ``++key=value`` reach every phase that has ``key`` or can take it: a new key under a node
      with a ``_target_`` is taken when the target has a parameter of that name (``+trainer.inference_mode=false``:
      every phase; ``++model.compile=...``: the phases whose module has ``compile``; ``**kwargs`` do not count),
      under a plain node always.
    * An override the chain's ``phases`` read (``stage_experiment=...`` of the P-DARTS chains) reaches the chain.

    Every phase is composed with the overrides it takes (later phases' artifacts as placeholders), so a bad value
    stops the chain here, before any phase runs. An override that reaches nothing raises :class:`ConfigError`
    naming it and the phases; one that skips some phases is in :meth:`OverridePlan.warnings`.
    """
    phases = _validated(cfg.phases)
    overrides = _user_overrides() if overrides is None else overrides
    run_dir = Path(cfg.paths.output_dir)
    artifacts: dict[str, dict[str, str]] = {}
    bases: dict[str, list[str]] = {}
    own: dict[str, tuple[DictConfig, dict[str, Any]]] = {}  # each phase without command-line overrides
    for name, spec in phases.items():
        if spec.get("use"):
            artifacts[name] = {_used_artifact_name(name, spec, phases): str(spec.use)}
            continue
        bases[name] = _phase_base(cfg, name, spec, run_dir / name, artifacts)
        own[name] = _compose(name, bases[name])
        artifacts[name] = _PromisedArtifacts(name)
    plan = OverridePlan(inherited={name: [] for name in own})
    if not own:
        return plan
    groups = set().union(*(choices for _, choices in own.values()), _root_choices())
    is_group = {override: _is_group_choice(override, groups) for override in overrides}
    reaching = {name: _overrides_reaching(name, bases[name], own[name], overrides, is_group) for name in own}
    chain_keys = _keys_read_by_phases(cfg)
    unreachable = []
    for override in overrides:
        reached = [name for name in own if override in reaching[name]]
        for name in reached:
            plan.inherited[name].append(override)
        if not reached and not _read_by_chain(override_key(override), chain_keys):
            unreachable.append(override)
        elif reached and len(reached) < len(own):
            skipped = [name for name in own if name not in reached]
            plan.skipped[override] = (skipped, _why_skipped(override, is_group[override]))
    if unreachable:
        raise ConfigError(_unreachable_message(unreachable, own, is_group))
    for name in own:
        plan.configs[name], plan.choices[name] = _compose(name, [*bases[name], *plan.inherited[name]])
        extra = list(phases[name].get("debug_overrides") or [])
        if extra and plan.choices[name].get("debug") is not None:
            plan.debug[name] = extra
            plan.configs[name], plan.choices[name] = _compose(name, [*bases[name], *plan.for_phase(name)])
    return plan


def _is_group_choice(override: str, groups: set[str]) -> bool:
    """Whether ``override`` chooses an option of a config group (``debug=fast``, ``model/backbone=resnet56``)."""
    group = override_key(override).split("@", 1)[0]
    return group in groups or "/" in group


def _overrides_reaching(name: str, base: list[str], own: tuple[DictConfig, dict[str, Any]], overrides: list[str],
                        is_group: dict[str, bool]) -> list[str]:
    """The overrides that reach a phase whose config, without command-line overrides, is ``own``.

    A group choice reaches a phase whose config has that group (``+group=option`` adds it: every phase); the other
    overrides are judged on the phase composed with the group choices that reach it, since a choice brings keys
    and groups (``model=classifier`` brings ``model/backbone``).
    """
    def reached(config: DictConfig, choices: dict[str, Any]) -> list[str]:
        return [override for override in overrides
                if (_reaches_group(override, choices) if is_group[override] else _reaches_key(override, config))]

    found = reached(*own)
    for _ in range(len(overrides)):
        chosen = [override for override in found if is_group[override]]
        if not chosen or len(found) == len(overrides):
            break
        again = reached(*_compose(name, [*base, *chosen]))
        if again == found:
            break
        found = again
    return found


def _reaches_group(override: str, choices: dict[str, Any]) -> bool:
    key = override_key(override)
    added = override.startswith("+") and not override.startswith("++")  # +group=option: as typed, everywhere
    return added or key in choices or key.split("@", 1)[0] in choices


def _reaches_key(override: str, probe: DictConfig) -> bool:
    """Whether ``key=value`` / ``~key`` / ``+key=value`` / ``++key=value`` applies to a phase whose config, with
    the command-line group choices that reach it, is ``probe``."""
    key = override_key(override)
    if _node_at(probe, key) is not None:
        return True
    return override.startswith("+") and _takes_new_key(probe, key)


def _node_at(cfg: DictConfig, key: str) -> Any:
    """The node at dotted ``key`` (``None`` when absent), found without resolving any interpolation."""
    node: Any = cfg
    for part in key.split("."):
        if isinstance(node, DictConfig):
            node = node._get_node(part, validate_access=False)
        elif isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node._get_node(int(part))
        else:
            return None
        if node is None:
            return None
    return node


def _takes_new_key(cfg: DictConfig, key: str) -> bool:
    """Whether adding ``key`` (absent from ``cfg``) gives an argument its object takes: under the deepest node of
    the path that exists, when that node has a ``_target_``, the target must accept the next name."""
    parts = key.split(".")
    depth = len(parts) - 1
    while depth > 0 and not isinstance(_node_at(cfg, ".".join(parts[:depth])), DictConfig):
        depth -= 1
    owner = _node_at(cfg, ".".join(parts[:depth])) if depth else cfg
    if not isinstance(owner, DictConfig):
        return False
    target = owner._get_node("_target_", validate_access=False)
    if target is None:
        return True  # a plain config node: a new key there is the config's own business
    return _accepts_argument(str(target._value()), parts[depth])


def _accepts_argument(target: str, name: str) -> bool:
    from hydra.utils import get_object

    try:
        parameters = inspect.signature(get_object(target)).parameters.values()
    except Exception:  # noqa: BLE001 (a target that does not import: let the phase's own build say why)
        return True
    # Only a named parameter counts: a class that takes **kwargs (a DataModule's DataLoader options) is not assumed
    # to take any key, which would move the failure from here into a running phase.
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return any(parameter.name == name and parameter.kind not in variadic for parameter in parameters)


def _why_skipped(override: str, group_choice: bool) -> str:
    key = override_key(override)
    if group_choice:
        return f"the config group `{key.split('@', 1)[0]}` is not used there"
    if override.startswith("+"):
        return f"no `{key}` there, nor an argument of that name"
    return f"no key `{key}` there"


def _unreachable_message(unreachable: list[str], own: dict[str, tuple[DictConfig, dict]],
                         is_group: dict[str, bool]) -> str:
    from visionsuite.cli import closest_keys, flat_keys

    phases = ", ".join(own)
    parts = []
    for override in unreachable:
        key = override_key(override)
        if is_group[override]:
            parts.append(f"`{override}` reaches no phase of this chain: none of its phases ({phases}) uses the config "
                         f"group `{key.split('@', 1)[0]}`; to choose it for one phase put it in "
                         "`phases.<name>.overrides`.")
            continue
        known = sorted({name for probe, _ in own.values() for name in flat_keys(probe)})
        close = closest_keys(key, known)
        hint = f" Did you mean {' or '.join(f'`{name}`' for name in close)}?" if close else ""
        if override.startswith("+"):
            why = f"no phase ({phases}) has `{key}` or takes it as an argument."
        else:
            why = (f"none of its phases ({phases}) has the key `{key}` (the chain's own config has it, but runs "
                   f"nothing).")
            if any(_takes_new_key(probe, key) for probe, _ in own.values()):
                why += f" Write ++{key}=... to add it to the phases that take it."
        parts.append(f"`{override}` reaches no phase of this chain: {why}{hint} To set a key of one phase use "
                     f"`phases.<name>.overrides`; mode=show_phases prints each phase's config.")
    return " ".join(parts)


def _keys_read_by_phases(cfg: DictConfig) -> set[str]:
    """The keys of the chain's own config that its ``phases`` interpolate (``${stage_experiment}``)."""
    container = OmegaConf.to_container(cfg.phases, resolve=False)
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, str):
            found.update(_INTERPOLATED_KEY.findall(value))

    visit(container)
    return found


def _read_by_chain(key: str, chain_keys: set[str]) -> bool:
    return any(key == used or used.startswith(f"{key}.") or key.startswith(f"{used}.") for used in chain_keys)


def _root_choices() -> set[str]:
    if not HydraConfig.initialized():
        return set()
    return set(HydraConfig.get().runtime.choices.keys())


def _user_overrides() -> list[str]:
    """The command-line overrides of this run that may apply to phases (not the chain's own keys)."""
    if not HydraConfig.initialized():
        return []
    return [override for override in HydraConfig.get().overrides.task if not _chain_only(override)]


def _chain_only(override: str) -> bool:
    key = override_key(override)
    return re.split(r"[./@]", key, maxsplit=1)[0] in _CHAIN_ONLY_KEYS or key in _CHAIN_ONLY_EXACT


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
    its own experiment, inputs and overrides, then the command-line overrides that reach it. Each phase's header
    says which of those it takes, its ``debug`` / ``trainer`` / ``logger`` choices and the trainer's length and
    devices. Artifacts of phases that have not run yet appear as placeholders.
    """
    stream = stream or sys.stdout
    if not cfg.get("phases"):
        raise ConfigError("mode=show_phases: this experiment has no `phases`; `python run.py <overrides> --cfg job` "
                          "prints its config.")
    plan = plan_overrides(cfg)
    for warning in plan.warnings():
        stream.write(f"# warning: {warning}\n")
    if plan.skipped:
        stream.write("\n")
    run_dir = Path(cfg.paths.output_dir)
    artifacts: dict[str, dict[str, str]] = {}
    for name, spec in _validated(cfg.phases).items():
        phase_dir = run_dir / name
        if spec.get("use"):
            artifacts[name] = {_used_artifact_name(name, spec, cfg.phases): str(spec.use)}
            stream.write(f"# phase {name}: given as {spec.use} (phases.{name}.use), not run\n\n")
            continue
        finished = phase_dir / RESULT_FILE
        phase_cfg = compose_phase(cfg, name, spec, phase_dir, artifacts, plan.for_phase(name))
        artifacts[name] = (json.loads(finished.read_text()).get("artifacts", {}) if finished.is_file()
                           else _PromisedArtifacts(name))
        status = "finished earlier, skipped on resume" if finished.is_file() else "runs"
        stream.write(f"# phase {name}: experiment={spec.experiment} in {phase_dir} ({status})\n")
        stream.write(_settings_line(phase_cfg, plan.choices[name], plan.inherited[name], plan.debug.get(name)))
        try:
            text = OmegaConf.to_yaml(phase_cfg, resolve=True)
        except Exception:  # noqa: BLE001 (an interpolation only a running job can resolve)
            text = OmegaConf.to_yaml(phase_cfg)
        stream.write(text + "\n")


def _settings_line(phase_cfg: DictConfig, choices: dict[str, Any], inherited: list[str],
                   debug: list[str] | None) -> str:
    """``#   debug=fast trainer=default logger=csv | trainer: max_epochs=1 limit_train_batches=1 ...``, the
    command-line overrides the phase takes and its debug overrides."""
    groups = " ".join(f"{group}={'null' if choices.get(group) is None else choices[group]}"
                      for group in ("debug", "trainer", "logger"))
    trainer = phase_cfg.get("trainer")
    settings = []
    for key in _SHOWN_TRAINER_KEYS:
        node = _node_at(trainer, key) if isinstance(trainer, DictConfig) else None
        if node is None:
            continue
        try:
            value = OmegaConf.select(trainer, key)
        except Exception:  # noqa: BLE001 (an interpolation of an artifact not written yet)
            value = node._value()
        if value is None or value is False or (key == "max_steps" and value == -1):
            continue
        settings.append(f"{key}={value}")
    given = ", ".join(inherited) if inherited else "none"
    extra = f"\n#   debug_overrides of this phase: {', '.join(debug)}" if debug else ""
    return f"#   {groups} | trainer: {' '.join(settings)}\n#   from the command line: {given}{extra}\n"


def _validated(phases: DictConfig) -> DictConfig:
    if not isinstance(phases, DictConfig):
        raise ConfigError("`phases` must map phase names to {experiment, inputs, overrides}.")
    for name, spec in phases.items():
        try:
            experiment = spec.get("experiment") if isinstance(spec, DictConfig) else None
        except (MissingMandatoryValue, InterpolationResolutionError) as error:
            raise ConfigError(f"`phases.{name}.experiment` has no value ({str(error).splitlines()[0]}): name the "
                              "experiment that phase runs.") from None
        if not experiment:
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


def _quote(value: Any) -> str:
    text = str(value)
    return f"'{text}'" if any(char in text for char in " ,=[]{}()'\"") else text
