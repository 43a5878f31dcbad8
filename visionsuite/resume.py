"""``resume=<run dir>``: continue an interrupted run in its own directory.

Hydra writes the command-line overrides of every run to ``<run dir>/.hydra/overrides.yaml``. Before Hydra
starts, :func:`expand_resume_argument` puts those saved overrides back on the command line (an override
given again on the new command line wins), so ``python run.py resume=<run dir>`` rebuilds the same
configuration; ``hydra.run.dir`` then points at that directory (see ``conf/hydra/default.yaml``) and the
pipeline continues from ``<run dir>/checkpoints/last.ckpt`` (each phase from its own).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from visionsuite.errors import ConfigError

_NOT_CARRIED_OVER = ("resume", "hydra.run.dir", "hydra.job.name", "hydra.output_subdir", "ckpt_path")


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
    given = [arg for arg in argv[1:] if not arg.startswith("-")]
    given_keys = {override_key(arg) for arg in given}
    carried = [item for item in saved
               if override_key(item) not in given_keys and override_key(item) not in _NOT_CARRIED_OVER]
    return [argv[0], *carried, *argv[1:]]
