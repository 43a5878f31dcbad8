"""``resume=<run dir>``: continue an interrupted run in its own directory.

Hydra writes the command-line overrides of every run to ``<run dir>/.hydra/overrides.yaml``. Before Hydra
starts, :func:`expand_resume_argument` puts those saved overrides back on the command line (an override
given again on the new command line wins), so ``python run.py resume=<run dir>`` rebuilds the same
configuration; ``hydra.run.dir`` then points at that directory (see ``conf/hydra/default.yaml``) and the
pipeline continues from ``<run dir>/checkpoints/last.ckpt`` (each phase from its own).

A run that finished (its ``result.json`` is written; for a chain, every phase's too) is not run again:
:func:`expand_resume_argument` raises :class:`RunFinished`, whose message says so and how to test it again, and
``run.py`` exits with code 0 without touching the directory.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import yaml

from visionsuite.errors import ConfigError

_NOT_CARRIED_OVER = ("resume", "hydra.run.dir", "hydra.job.name", "hydra.output_subdir", "ckpt_path")
RESULT_FILE = "result.json"


class RunFinished(Exception):
    """``resume=`` named a run that has finished; the message says how to test it again."""


def override_key(override: str) -> str:
    """The config key an override sets: ``+model.x=1`` -> ``model.x``."""
    return override.split("=", 1)[0].lstrip("+~")


def expand_resume_argument(argv: list[str]) -> list[str]:
    """Return ``argv`` with the saved overrides of the run named by ``resume=`` put back in front."""
    resume_args = [arg for arg in argv[1:] if arg.startswith("resume=")]
    if not resume_args:
        return argv
    run_dir = Path(resume_args[-1].split("=", 1)[1]).expanduser()
    if str(run_dir) in ("", "null"):
        return argv
    if any(arg in ("-m", "--multirun") for arg in argv[1:]):
        raise ConfigError("`resume=` continues one run; it cannot be combined with multirun (-m).")
    saved_file = run_dir / ".hydra" / "overrides.yaml"
    if not run_dir.is_dir():
        raise ConfigError(f"resume={run_dir}: no such run directory. Pass the folder of an earlier run "
                          "(it holds .hydra/ and checkpoints/), e.g. logs/train/runs/<date>.")
    if not saved_file.is_file():
        raise ConfigError(f"resume={run_dir}: {saved_file} is missing, so this is not a run directory written "
                          "by run.py. Pass the folder that holds .hydra/ and checkpoints/.")
    saved = yaml.safe_load(saved_file.read_text()) or []
    if "mode=show_phases" not in argv[1:]:
        _refuse_finished(run_dir, saved)
    given = [arg for arg in argv[1:] if not arg.startswith("-")]
    given_keys = {override_key(arg) for arg in given}
    carried = [item for item in saved
               if override_key(item) not in given_keys and override_key(item) not in _NOT_CARRIED_OVER]
    return [argv[0], *carried, *argv[1:]]


def _refuse_finished(run_dir: Path, saved: list[str]) -> None:
    """Raise :class:`RunFinished` when ``run_dir`` holds a finished run (or a chain whose phases all finished)."""
    result_file = run_dir / RESULT_FILE
    if not result_file.is_file():
        return
    try:
        result = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: let the run go on and write it again
    phases = [phase for phase in result.get("phases") or [] if phase.get("status") != "given"]
    unfinished = [phase["name"] for phase in phases if not (Path(phase["output_dir"]) / RESULT_FILE).is_file()]
    if unfinished:
        return  # a phase's result was removed to run it again
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result_file.stat().st_mtime))
    head = f"resume={run_dir}: this run finished on {when} ({result_file}); nothing to continue, nothing was changed."
    if phases:
        raise RunFinished(f"{head}\nTo run a phase again, delete <run dir>/<phase>/result.json and resume; to test a "
                          "phase's checkpoint: python run.py experiment=<its experiment> mode=test ckpt_path=<file>.")
    artifacts = result.get("artifacts") or {}
    checkpoint = artifacts.get("best_checkpoint") or artifacts.get("last_checkpoint")
    overrides = [item for item in saved if override_key(item) not in (*_NOT_CARRIED_OVER, "mode")]
    command = shlex.join(["python", "run.py", *overrides, "mode=test", f"ckpt_path={checkpoint or '<file.ckpt>'}"])
    raise RunFinished(f"{head}\nTo test it again (into a new run directory): {command}")
