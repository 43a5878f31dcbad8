"""What ``run.py`` does around Hydra: ``resume=``, ``mode=show_phases``, key-typo suggestions and exit codes.

* ``resume=<run dir>`` puts the run's saved overrides back on the command line (``visionsuite.resume``); a run that
  finished is not run again (exit code 0, nothing touched).
* ``mode=show_phases`` prints each phase's effective config and exits, without creating a run directory.
* A chain's command-line overrides are checked against its phases before Hydra starts
  (:func:`check_chain_overrides`): one that reaches no phase stops the run with one ``error:`` line.
* An override Hydra refuses gets one message naming it and what to type, instead of Hydra's text: a mistyped key
  (``trainer.max_epoch=2``: "did you mean `trainer.max_epochs`?"), a group option that does not exist
  (``trainer=gpuu``: the closest options), a group the experiment does not use, ``+key`` of an existing key,
  ``~key`` of a missing one, an override that does not parse. While Hydra composes the config its error output is
  held back (:class:`HeldStderr`), and released unchanged unless it is one of these (:func:`refused_override_message`).
* Exit codes: 0 done (or already finished), 1 an unexpected error, 2 a bad input (one ``error:`` line),
  130 interrupted with Ctrl-C (one line saying how to resume).
"""

from __future__ import annotations

import difflib
import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig, OmegaConf, open_dict

from visionsuite.errors import ConfigError

SHOW_PHASES = "mode=show_phases"
_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'[\s\S]*?not in struct")


class HeldStderr(io.TextIOBase):
    """Stands in for ``sys.stderr`` until :meth:`release`: holds what is written, then passes writes through."""

    def __init__(self, real: TextIO) -> None:
        super().__init__()
        self.real = real
        self.buffer_text = io.StringIO()
        self.released = False

    def write(self, text: str) -> int:
        return self.real.write(text) if self.released else self.buffer_text.write(text)

    def flush(self) -> None:
        self.real.flush()

    def release(self) -> None:
        """Write what was held to the real stderr and pass everything through from now on."""
        if not self.released:
            self.released = True
            self.real.write(self.buffer_text.getvalue())
            self.real.flush()
            if sys.stderr is self:
                sys.stderr = self.real

    def discard(self) -> None:
        """Drop what was held and pass everything through from now on."""
        self.buffer_text = io.StringIO()
        self.release()

    def held_text(self) -> str:
        return self.buffer_text.getvalue()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.real.encoding

    def isatty(self) -> bool:
        return self.real.isatty()

    def fileno(self) -> int:
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:  # anything else the real stream has
        return getattr(self.real, name)


_held: HeldStderr | None = None


def hold_stderr() -> HeldStderr:
    """Start holding back stderr (what Hydra prints while it composes the config)."""
    global _held
    _held = HeldStderr(sys.stderr)
    sys.stderr = _held
    return _held


def release_stderr() -> None:
    """Stop holding back stderr (the task function calls this first: the config composed fine)."""
    if _held is not None:
        _held.release()


def compose_for(config_dir: Path, overrides: list[str]) -> DictConfig:
    """The config Hydra would build for ``overrides``, with its ``hydra`` node (``HydraConfig`` is set)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    initialize_config_dir(config_dir=str(config_dir), version_base="1.3")
    cfg = compose(config_name="run", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(OmegaConf.select(cfg, "hydra.run.dir"))
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def unknown_key_message(hydra_output: str, overrides: list[str], config_dir: Path) -> str | None:
    """For Hydra's "Could not override 'k' ... not in struct" failure: one message with the closest keys."""
    match = _UNKNOWN_KEY.search(hydra_output)
    if match is None:
        return None
    key = match.group(1)
    remaining = [item for item in overrides if item.split("=", 1)[0] != key]
    try:
        cfg = compose_for(config_dir, remaining)
    except Exception:  # noqa: BLE001 (another bad override: Hydra's own message is the better one)
        return None
    with open_dict(cfg):
        del cfg["hydra"]
    phases = phases_with_key(cfg, key, config_dir)
    if phases:
        return (f"`{key}` is a key of this chain's phases ({', '.join(phases)}), not of the chain's own config: write "
                f"++{key}=... to set it in the phases that have it (a warning names any other phase), or put it in "
                "phases.<name>.overrides for one phase (`mode=show_phases` prints what each phase runs).")
    suggestions = closest_keys(key, flat_keys(cfg))
    hint = f" Did you mean {' or '.join(f'`{name}`' for name in suggestions)}?" if suggestions else ""
    return (f"`{key}` is not a key of this config.{hint} (To add a new key on purpose, write +{key}=...; "
            "`python run.py <overrides> --cfg job` prints every key.)")


_MISSING_OPTION = re.compile(r"Could not find '(?P<group>[^']+)/(?P<option>[^'/]+)'\s+Available options in '[^']+':\s*\n"
                             r"(?P<options>(?:[ \t]+\S.*\n?)+)")
_UNUSED_GROUP = re.compile(r"Could not override '(?P<group>[^']+)'\. No match in the defaults list")
_EXISTING_KEY = re.compile(r"Could not append to config\. An item is already at '(?P<key>[^']+)'")
_MISSING_DELETE = re.compile(r"Could not delete from config\. '(?P<key>[^']+)' does not exist")
_GRAMMAR = re.compile(r"no viable alternative|mismatched input|extraneous input|token recognition error|missing '")


def refused_override_message(hydra_output: str, overrides: list[str], config_dir: Path) -> str | None:
    """One message (what run.py prints after ``error:``, exit code 2) for an override Hydra refused while composing
    the config: an unknown key, a missing group option, a group the experiment does not use, ``+key`` of an
    existing key, ``~key`` of a missing one, or an override it cannot parse. ``None``: not an override problem
    (Hydra's own output is then shown unchanged)."""
    unknown = unknown_key_message(hydra_output, overrides, config_dir)
    if unknown is not None:
        return unknown
    if match := _MISSING_OPTION.search(hydra_output):
        group, option = match["group"], match["option"]
        options = [line.strip() for line in match["options"].splitlines() if line.strip()]
        close = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(f'`{group}={name}`' for name in close)}?" if close else ""
        listing = ", ".join(options) if len(options) <= 12 else f"{', '.join(options[:12])}, ... ({len(options)} in all)"
        return f"`{group}={option}`: `{group}` has no option `{option}`.{hint} Options: {listing}."
    if match := _UNUSED_GROUP.search(hydra_output):
        group = match["group"]
        typed = next((item for item in overrides if item.split("=", 1)[0] == group), f"{group}=...")
        return (f"`{typed}`: this experiment does not use the config group `{group}` (its defaults list has none), so "
                f"there is nothing to replace. Pick an experiment that uses it, or add the group on purpose with "
                f"+{typed}.")
    if match := _EXISTING_KEY.search(hydra_output):
        key = match["key"]
        return (f"`+{key}`: `{key}` is already a key of this config; set it with {key}=... (or ++{key}=..., which "
                "sets a key whether or not it exists).")
    if match := _MISSING_DELETE.search(hydra_output):
        key = match["key"]
        return f"`~{key}`: this config has no key `{key}` to remove.{_key_hint(key, overrides, config_dir)}"
    if _GRAMMAR.search(hydra_output):
        bad = _unparsable_override(overrides)
        reason = hydra_output.strip().splitlines()[0]
        what = f"`{bad}` is not a valid override" if bad else "an override is not valid"
        return (f"{what} ({reason}). Write key=value; quote a value that holds spaces, commas, brackets or '=' "
                "(e.g. 'data.name=a b'); lists are key=[a,b].")
    return None


def _key_hint(key: str, overrides: list[str], config_dir: Path) -> str:
    """`` Did you mean ...?`` with the config's closest keys, or nothing."""
    remaining = [item for item in overrides if item.lstrip("~+").split("=", 1)[0] != key]
    try:
        cfg = compose_for(config_dir, remaining)
    except Exception:  # noqa: BLE001 (another bad override: no suggestion)
        return ""
    suggestions = closest_keys(key, flat_keys(cfg))
    return f" Did you mean {' or '.join(f'`{name}`' for name in suggestions)}?" if suggestions else ""


def _unparsable_override(overrides: list[str]) -> str | None:
    """The first override Hydra's grammar cannot parse."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except Exception:  # noqa: BLE001 (any parse failure names this override)
            return override
    return None


def phases_with_key(cfg: DictConfig, key: str, config_dir: Path) -> list[str]:
    """The phases of a chain ``cfg`` whose experiment has ``key`` (empty for a single job)."""
    phases = cfg.get("phases") if isinstance(cfg, DictConfig) else None
    if not isinstance(phases, DictConfig):
        return []
    found = []
    for name in phases:
        experiment = OmegaConf.select(cfg, f"phases.{name}.experiment", default=None)
        try:
            phase_cfg = compose_for(config_dir, [f"experiment={experiment}"])
        except Exception:  # noqa: BLE001 (a phase that does not compose: not what this message is about)
            continue
        if OmegaConf.select(phase_cfg, key, default="__missing__") != "__missing__":
            found.append(str(name))
    return found


def flat_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a config (``trainer.max_epochs``), without resolving values."""
    keys = []
    if isinstance(node, DictConfig):
        for name in node.keys():
            full = f"{prefix}{name}"
            keys.append(full)
            child = node._get_node(name)
            if isinstance(child, DictConfig):
                keys += flat_keys(child, f"{full}.")
    return keys


def closest_keys(key: str, known: Iterable[str], count: int = 3) -> list[str]:
    """The known keys most like ``key``: same parent first (``trainer.max_epoch`` -> ``trainer.max_epochs``)."""
    known = list(known)
    parent, _, leaf = key.rpartition(".")
    siblings = [name for name in known if name.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(leaf, [name.rpartition(".")[2] for name in siblings], n=count, cutoff=0.6)
    if close:
        return [f"{parent}.{name}" if parent else name for name in close]
    return difflib.get_close_matches(key, known, n=count, cutoff=0.75)


def check_chain_overrides(argv: list[str], config_dir: Path) -> None:
    """Before Hydra starts a chain: every phase composes with the command-line overrides that reach it, and every
    override reaches a phase (:func:`visionsuite.phases.plan_overrides`); else :class:`ConfigError`, so a chain
    that cannot run stops before its run directory is made, as a bad key does.

    Runs with flags (``-m``, ``--cfg``, ``--help``) and overrides Hydra itself refuses are left to Hydra (a
    multirun's jobs make the same check when they start); a config without ``phases`` has nothing to check.
    """
    from hydra.core.global_hydra import GlobalHydra

    from visionsuite.phases import plan_overrides

    overrides = argv[1:]
    if any(arg.startswith("-") for arg in overrides):
        return
    try:
        cfg = compose_for(config_dir, overrides)
    except Exception:  # noqa: BLE001 (Hydra reports a bad override itself, with the key suggestions above)
        GlobalHydra.instance().clear()
        return
    try:
        if cfg.get("phases"):
            with open_dict(cfg):
                del cfg["hydra"]
            plan_overrides(cfg)
    finally:
        GlobalHydra.instance().clear()


def show_phases_of(argv: list[str], config_dir: Path, stream: TextIO | None = None) -> None:
    """``mode=show_phases``: print each phase's effective config for these overrides, run nothing."""
    from hydra.errors import ConfigCompositionException

    from visionsuite.phases import show_phases

    overrides = [item for item in argv[1:] if item != SHOW_PHASES]
    try:
        cfg = compose_for(config_dir, overrides)
    except ConfigCompositionException as error:
        message = refused_override_message(f"{error}\n{error.__cause__}", overrides, config_dir)
        if message is None:
            raise
        raise ConfigError(message) from None
    with open_dict(cfg):
        del cfg["hydra"]
    show_phases(cfg, stream)
