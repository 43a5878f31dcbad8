"""visionsuite entry point: ``python run.py experiment=<name> [key=value ...]``.

Modes: ``mode=train`` (fit, then test the best checkpoint), ``mode=test ckpt_path=<file>``,
``mode=summary`` (model size report as one JSON line, no data). ``resume=<run dir>`` continues an
interrupted run in its own directory. See README.md.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

import visionsuite.resolvers  # noqa: F401  (registers ${run_dir:...} before Hydra reads the config)
from visionsuite.errors import VisionSuiteError
from visionsuite.pipeline import optimized_metric, run
from visionsuite.resume import expand_resume_argument


@hydra.main(version_base="1.3", config_path="conf", config_name="run")
def main(cfg: DictConfig) -> float | None:
    try:
        result = run(cfg)
        return optimized_metric(cfg, result) if cfg.get("mode") == "train" else None
    except VisionSuiteError as error:
        _fail(error)


def _fail(error: VisionSuiteError) -> None:
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(2)


if __name__ == "__main__":
    try:
        sys.argv = expand_resume_argument(sys.argv)
    except VisionSuiteError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    main()
