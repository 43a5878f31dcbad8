"""visionsuite entry point: ``python run.py experiment=<name> [key=value ...]``; ``python run.py --help``.

Modes: ``mode=train`` (fit, then test the best checkpoint), ``mode=test ckpt_path=<file>``, ``mode=predict
ckpt_path=<file>``, ``mode=summary`` (model size report as one JSON line, no data), ``mode=show_phases`` (each
phase's effective config of a chain; runs nothing). ``resume=<run dir>`` continues an interrupted run in its own
directory (a finished one is left alone). Exit codes: 0 done, 2 bad input, 130 interrupted (Ctrl-C). See
docs/running.md.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

import visionsuite.resolvers  # noqa: F401  (registers ${run_dir:...} before Hydra reads the config)
from visionsuite import cli
from visionsuite.errors import ConfigError, RunInterrupted, VisionSuiteError
from visionsuite.pipeline import optimized_metric, run
from visionsuite.resume import RunFinished, expand_resume_argument
from visionsuite.run_log import record_in_run_log, send_library_logs_to_run_log

CONFIG_DIR = Path(__file__).resolve().parent / "conf"
INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


@hydra.main(version_base="1.3", config_path="conf", config_name="run")
def main(cfg: DictConfig) -> float | None:
    cli.release_stderr()  # the config composed: Hydra's output (if any) goes out as it was
    send_library_logs_to_run_log()
    try:
        result = run(cfg)
        record_in_run_log(logging.INFO, f"finished: {result.get('output_dir')}; metrics {result.get('metrics')}")
        return optimized_metric(cfg, result) if cfg.get("mode") == "train" else None
    except VisionSuiteError as error:
        _fail(str(error))
    except (RunInterrupted, KeyboardInterrupt):
        run_dir = cfg.paths.output_dir
        message = f"interrupted: continue this run with `python run.py resume={run_dir}`"
        record_in_run_log(logging.WARNING, message)
        print(message, file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED) from None


def _fail(message: str) -> None:
    record_in_run_log(logging.ERROR, f"error: {message}")
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _before_hydra(argv: list[str]) -> list[str]:
    """``resume=`` expansion, ``mode=show_phases`` (which exits here, creating no run directory) and the check that
    a chain's command-line overrides reach its phases (a failure creates no run directory either)."""
    argv = expand_resume_argument(argv)
    if cli.SHOW_PHASES in argv[1:]:
        if any(arg.startswith("-") for arg in argv[1:]):
            raise ConfigError("mode=show_phases takes overrides only (no -m / --cfg / other flags).")
        cli.show_phases_of(argv, CONFIG_DIR)
        raise SystemExit(0)
    cli.check_chain_overrides(argv, CONFIG_DIR)
    return argv


if __name__ == "__main__":
    try:
        sys.argv = _before_hydra(sys.argv)
    except RunFinished as finished:
        print(finished, flush=True)
        raise SystemExit(0) from None
    except VisionSuiteError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    held = cli.hold_stderr()
    try:
        main()
    except SystemExit as exit_:
        if not held.released and exit_.code not in (0, None):  # Hydra failed before the job started
            message = cli.refused_override_message(held.held_text(), sys.argv[1:], CONFIG_DIR)
            if message is not None:
                held.discard()  # Hydra's text is replaced by this one line
                print(f"error: {message}", file=sys.stderr, flush=True)
                raise SystemExit(2) from None
        raise
    finally:
        held.release()
