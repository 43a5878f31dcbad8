"""Write a suite checkpoint from an official one: ``python -m visionsuite.convert <official file> --experiment
<name> --out <file.ckpt> [key=value ...]``.

The experiment's model is built (with the overrides given after the options, e.g. ``model.net.genotype=DARTS_V2``),
the official file is converted into it by the method's converter (``visionsuite.official_weights``), and the
weights are written as a weights-only checkpoint with the suite's format record. ``python run.py
experiment=<name> mode=test ckpt_path=<file.ckpt>`` evaluates it; ``mode=train ckpt_path=<file.ckpt>`` fine-tunes
from it (a weights-only checkpoint starts a fresh training run). ``python run.py ... ckpt_path=<official file>``
does the same conversion in memory, without writing a file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from visionsuite.checkpoint_files import RECORD_KEY, checkpoint_record
from visionsuite.errors import ConfigError, VisionSuiteError
from visionsuite.instantiate import build
from visionsuite.io import atomic_file
from visionsuite.official_weights import load_converted, read_official_weights

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_experiment(experiment: str, overrides: list[str]) -> DictConfig:
    """The composed run config of ``experiment`` with ``overrides`` (no run directory is created)."""
    import visionsuite.resolvers  # noqa: F401  (the configs use the suite's resolvers)

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="run", overrides=[f"experiment={experiment}", *overrides])


def convert(official_path: Path, experiment: str, out: Path, overrides: list[str] | None = None) -> Path:
    """Convert ``official_path`` into ``experiment``'s model and write the weights-only checkpoint ``out``."""
    cfg = compose_experiment(experiment, list(overrides or []))
    if cfg.get("phases"):
        raise ConfigError(f"--experiment {experiment} is a chain of phases; name the experiment of the phase whose "
                          "network the file holds (see `python run.py experiment=... mode=show_phases`).")
    model = build(cfg.model, "model")
    official_format = model.official_format()
    if official_format is None:
        raise ConfigError(f"--experiment {experiment}: {type(model).__name__} reads no official checkpoint format.")
    load_converted(official_format.network, read_official_weights(official_path), official_format.convert_key,
                   source=official_path, description=official_format.description)
    checkpoint: dict[str, Any] = {
        "state_dict": model.state_dict(),
        "pytorch-lightning_version": pl.__version__,
        "epoch": 0,
        "global_step": 0,
        "hyper_parameters": OmegaConf.to_container(OmegaConf.create(dict(model.hparams)), resolve=True),
        RECORD_KEY: {**checkpoint_record(model), "converted_from": str(official_path),
                     "official_format": official_format.description},
    }
    with atomic_file(out, "wb") as stream:
        torch.save(checkpoint, stream)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visionsuite.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("official", type=Path, help="the official checkpoint or weights file")
    parser.add_argument("--experiment", required=True, help="the experiment whose network the file holds")
    parser.add_argument("--out", required=True, type=Path, help="the suite checkpoint to write (.ckpt)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. model.net.genotype=DARTS_V2")
    args = parser.parse_intermixed_args(argv)  # overrides may follow the options, as the usage line shows
    try:
        written = convert(args.official, args.experiment, args.out, args.overrides)
    except VisionSuiteError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    command = " ".join(["python run.py", f"experiment={args.experiment}", *args.overrides, "mode=test",
                        f"ckpt_path={written}"])
    print(f"wrote {written}; evaluate it with: {command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
