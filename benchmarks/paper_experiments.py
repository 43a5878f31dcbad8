"""Every paper experiment, once, as its paper sets it: what it costs, and whether it runs at all.

A paper experiment is an experiment of ``conf/experiment/`` that is not a demo (embedded or generated data:
``digits``, ``shapes``, ``*demo*`` in its name) and not only a phase of a chain (an experiment some chain names in
its ``phases``, unless it is one of the paper's own experiments too: ``nas_train_*``, ``darts_*``, ``classify_*``);
:func:`paper_experiments` reads them from the config files. Each runs through ``run.py`` (a subprocess, so its peak
memory is its own) under ``debug=fast`` with ``trainer.limit_train_batches=<steps>``: a few training steps, one
validation and one test in every phase of its chain, with the paper's network and input resolution, on the tiny
dataset ``datamodules/writers/paper.py`` writes in the real on-disk format. Only the batch is smaller on a CPU
(reported per phase).

    python benchmarks/paper_experiments.py [--only NAME ...] [--device cpu|cuda] [--steps 3] [--threads N]
                                           [--out FILE] [--table]

Prints one JSON object: per experiment ``ok``, ``error`` (one line), ``seconds``, ``peak_rss_mb`` (the process),
and per phase (``""`` for a single experiment) ``parameters``, ``batch_size``, ``steps``, ``seconds_per_step``
(training steps after the first; the forward, backward and optimizer step of a batch, data loading excluded),
``peak_memory_mb`` (CPU: the process's peak RSS by the end of the phase; cuda: ``torch.cuda.max_memory_allocated``
in the phase), ``validated`` and ``tested``. With ``--device cuda`` each phase runs at the paper's per-GPU batch
(the experiment's own ``data.batch_size``) and gets ``paper_steps`` and ``projected_hours``: the steps of the
paper's schedule (``trainer.max_steps``, or ``trainer.max_epochs`` x the batches of an epoch of the real training
set, :data:`TRAIN_SET_SIZES`) x the measured step time. ``--table`` also prints a table on stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO_ROOT / "conf" / "experiment"
DEMO_MARKERS = ("digits", "demo", "shapes")  # embedded / generated data: a demo's name says so
# Named by a chain's phases, yet what a user runs as the paper's experiment (the cell training of DARTS-family
# papers, the DARTS search, the classifiers of the classification and logit-defense pages).
PAPER_PHASE_PREFIXES = ("nas_train_", "darts_", "classify_")
# Not phases by the rule above, yet no experiment of their own: what they run is measured inside another one.
NOT_PAPER = {"augrefine_refine": "the refine phase alone on a given ckpt_path (measured in augrefine_*'s refine)"}

# Real training-set sizes (images; volumes' samples per epoch come from the config), for the projected schedule.
TRAIN_SET_SIZES: dict[str, tuple[int, str]] = {
    "cifar10": (50_000, "Krizhevsky 2009, python version"),
    "cifar100": (50_000, "Krizhevsky 2009, python version"),
    "imagenet": (1_281_167, "ILSVRC-2012 train"),
    "coco": (118_287, "COCO train2017 (= trainval35k)"),
    "market1501": (12_936, "Market-1501 bounding_box_train; MCNL's SCT keeps ~1/6 of it"),
    "dukemtmc": (16_522, "DukeMTMC-reID bounding_box_train; MCNL's SCT keeps ~1/8 of it"),
    "sketchy": (73_002, "Sketchy-Extended photos of the 100 seen classes (an epoch ends when the photos run out)"),
    "tuberlin": (172_000, "TU-Berlin-Extended photos of the 220 seen classes (approximate)"),
}

# CPU batch per dataset (the papers' batches are GPU batches; sizes per phase are reported). Re-ID keeps the
# paper's batch composition at one identity per camera (K=8 x 6 / 8 cameras), SAKE its sketch share (1/3, 1/10).
CPU_BATCH = {"cifar10": 16, "cifar100": 16, "imagenet": 8, "coco": 2, "market1501": 48, "dukemtmc": 64,
             "sketchy": 12, "tuberlin": 10, "msd_hepatic_vessel": 4, "msd_pancreas": 4}
CPU_BATCH_3D = 1  # 3D U-Net patches of 128x128x32
# Data of the tiny datasets, not of the experiment: PFS's ImageNet hold-out (50 images a class) of 2 images a class.
DATA_OVERRIDES = {"pfs_": {"imagenet": ["data.val_per_class=1"]}}


# ------------------------------------------------------------------------------------------- the list
def _raw(name: str) -> dict[str, Any]:
    """``conf/experiment/<name>.yaml`` merged with the experiments it includes (no Hydra: a quick read)."""
    path = EXPERIMENTS / f"{name}.yaml"
    own = yaml.safe_load(path.read_text()) or {}
    merged: dict[str, Any] = {}
    entries = [entry for entry in own.get("defaults") or [] if isinstance(entry, str)]
    if "_self_" not in entries:
        entries.append("_self_")
    for entry in entries:
        if entry == "_self_":
            _merge(merged, {key: value for key, value in own.items() if key != "defaults"})
        elif (EXPERIMENTS / f"{entry}.yaml").is_file():
            _merge(merged, _raw(entry))
    return merged


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _resolve(text: str, config: dict[str, Any]) -> str | None:
    """``${a.b}`` interpolations of ``text`` filled from ``config``; ``None`` when one is missing or ``???``."""
    for _ in range(5):
        match = re.search(r"\$\{([\w.]+)\}", text)
        if match is None:
            return None if text == "???" else text
        value: Any = config
        for part in match.group(1).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or value == "???":
            return None
        text = text[: match.start()] + value + text[match.end():]
    return None


def chain_phases(name: str) -> list[str]:
    """The experiments the chain ``name`` runs as phases (empty for a single experiment)."""
    config = _raw(name)
    phases = config.get("phases") or {}
    named = [_resolve(str(spec.get("experiment")), config) for spec in phases.values() if isinstance(spec, dict)]
    return [experiment for experiment in named if experiment]


def paper_experiments() -> list[str]:
    """Every experiment of ``conf/experiment/*.yaml`` that is not a demo and not only a phase of a chain."""
    names = sorted(path.stem for path in EXPERIMENTS.glob("*.yaml"))
    phases = {phase for name in names for phase in chain_phases(name) if phase != name}
    return [name for name in names
            if not any(marker in name for marker in DEMO_MARKERS) and name not in NOT_PAPER
            and (name not in phases or name.startswith(PAPER_PHASE_PREFIXES))]


# ------------------------------------------------------------------------------------- the recorder
class CostRecorder(pl.Callback):
    """Appends, when a stage of a phase ends, one JSON line to ``path``: the phase's folder, its parameters, the
    seconds of each training step, its batch size, peak memory, and whether it validated and tested."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._start = 0.0
        self._steps: list[float] = []
        self._validated = self._tested = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        _synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        _synchronize()
        self._steps.append(time.perf_counter() - self._start)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validated = self._validated or not trainer.sanity_checking

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._tested = True

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        import torch

        cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        record = {
            "folder": str(trainer.default_root_dir), "stage": stage,
            "parameters": sum(parameter.numel() for parameter in pl_module.parameters()),
            "batch_size": getattr(trainer.datamodule, "batch_size", None),
            "step_seconds": self._steps, "validated": self._validated, "tested": self._tested,
            "peak_memory_mb": cuda if cuda is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        self._steps, self._validated, self._tested = [], False, False


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------- one run
def cpu_batch(name: str) -> int | None:
    """The batch an experiment runs at on a CPU (``None``: its own)."""
    from datamodules.writers.paper import paper_datasets

    if name.startswith("unet3d") or name.startswith("dynunet3d"):
        return CPU_BATCH_3D
    datasets = paper_datasets(name)
    return CPU_BATCH.get(datasets[0]) if datasets else None


def run_overrides(name: str, device: str, steps: int, record: Path) -> list[str]:
    """The command line of one dry run (after ``python run.py``)."""
    from datamodules.writers.paper import paper_datasets

    overrides = [
        f"experiment={name}", "debug=fast", "logger=csv", f"trainer={'gpu' if device == 'cuda' else 'cpu'}",
        f"++trainer.limit_train_batches={steps}", "++trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "~callbacks.model_summary",
        f"+callbacks.paper_cost._target_={__name__ if __name__ != '__main__' else 'benchmarks.paper_experiments'}"
        ".CostRecorder",
        f"+callbacks.paper_cost.path={record}",
    ]
    if device == "cpu" and (batch := cpu_batch(name)) is not None:
        overrides.append(f"++data.batch_size={batch}")
    for prefix, by_dataset in DATA_OVERRIDES.items():
        if name.startswith(prefix):
            for dataset in paper_datasets(name):
                overrides += by_dataset.get(dataset, [])
    return overrides


def run_experiment(name: str, data_dir: Path, work_dir: Path, device: str = "cpu", steps: int = 3,
                   timeout: float = 3600.0, extra: Sequence[str] = (), threads: int | None = None) -> dict[str, Any]:
    """Write the experiment's tiny data into ``data_dir`` (kept between experiments) and dry-run it in
    ``work_dir``; returns its entry of the report. ``extra``: more overrides (last); ``threads``: torch's
    intra-op threads in the run (default: torch's own choice)."""
    from datamodules.writers.paper import write_paper_data

    write_paper_data(name, data_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    record = work_dir / "cost.jsonl"
    command = [sys.executable, str(REPO_ROOT / "run.py"), *run_overrides(name, device, steps, record),
               f"paths.data_dir={data_dir}", *extra]
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(REPO_ROOT)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    with (work_dir / "stdout.txt").open("w") as out, (work_dir / "stderr.txt").open("w") as err:
        process = subprocess.Popen(command, cwd=work_dir, env=env, stdout=out, stderr=err, start_new_session=True)
        timer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)  # the child's own peak RSS (ru_maxrss, KiB on Linux)
        timer.cancel()
        process.returncode = returncode = os.waitstatus_to_exitcode(status)
    timed_out = returncode == -signal.SIGKILL and time.perf_counter() - started >= timeout
    entry: dict[str, Any] = {
        "ok": returncode == 0,
        "error": None if returncode == 0 else _error_line(work_dir / "stderr.txt", None if timed_out else returncode,
                                                          timeout),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1) if device == "cpu" else None,
        "command": "python run.py " + " ".join(command[2:]),
        "phases": _phases(record, work_dir, steps),
    }
    return entry


def _error_line(stderr: Path, returncode: int | None, timeout: float) -> str:
    if returncode is None:
        return f"timed out after {timeout:.0f} s"
    lines = [line.strip() for line in stderr.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):  # the suite's one-line error, else the exception's last line
        if line.startswith("error:") or re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line):
            return line
    return lines[-1] if lines else f"exit code {returncode}"


def _phases(record: Path, work_dir: Path, steps: int) -> dict[str, dict[str, Any]]:
    """Per phase (its folder under the run directory; ``""`` for a single experiment) what the stages recorded."""
    if not record.is_file():
        return {}
    lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    runs = [path.parent for path in work_dir.glob("logs/*/runs/*/.hydra")]
    run_dir = runs[0] if runs else None
    phases: dict[str, dict[str, Any]] = {}
    for line in lines:
        folder = Path(line["folder"])
        name = str(folder.relative_to(run_dir)) if run_dir and folder.is_relative_to(run_dir) else folder.name
        name = "" if name == "." else name
        phase = phases.setdefault(name, {"parameters": 0, "batch_size": None, "steps": 0, "seconds_per_step": None,
                                         "peak_memory_mb": 0.0, "validated": False, "tested": False})
        phase["parameters"] = max(phase["parameters"], line["parameters"])
        phase["batch_size"] = phase["batch_size"] or line["batch_size"]
        phase["peak_memory_mb"] = round(max(phase["peak_memory_mb"], line["peak_memory_mb"]), 1)
        phase["validated"] = phase["validated"] or line["validated"]
        phase["tested"] = phase["tested"] or line["tested"]
        if line["step_seconds"]:
            timed = line["step_seconds"][1:] or line["step_seconds"]  # the first step warms up
            phase["steps"] = len(line["step_seconds"])
            phase["seconds_per_step"] = round(sum(timed) / len(timed), 3)
    chain = run_dir / "result.json" if run_dir else None
    ran = json.loads(chain.read_text()).get("phases", []) if chain and chain.is_file() else []
    if not ran:
        return phases
    # In the chain's order; a task (the prune step) has no Trainer, so nothing of it is recorded.
    untrained = {"parameters": None, "batch_size": None, "steps": 0, "seconds_per_step": None,
                 "peak_memory_mb": None, "validated": False, "tested": False}
    return {phase["name"]: phases.get(phase["name"], {**untrained, "status": phase.get("status")}) for phase in ran}


# ---------------------------------------------------------------------------------- the paper's schedule
def paper_schedule(name: str) -> dict[str, dict[str, Any]]:
    """Per phase: the paper's per-GPU batch and the steps of its schedule (composed without debug settings)."""
    from omegaconf import open_dict

    from datamodules.writers.paper import paper_datasets
    from visionsuite.cli import compose_for
    from visionsuite.phases import plan_overrides

    cfg = compose_for(REPO_ROOT / "conf", [f"experiment={name}", "hydra.run.dir=/tmp/paper_schedule"])
    with open_dict(cfg):
        del cfg["hydra"]
    configs = plan_overrides(cfg, overrides=[]).configs if cfg.get("phases") else {"": cfg}
    datasets = paper_datasets(name)
    images = TRAIN_SET_SIZES.get(datasets[0], (None, ""))[0] if datasets else None
    schedule = {}
    for phase, config in configs.items():
        value = functools.partial(_selected, config)
        batch, max_steps, epochs = value("data.batch_size"), value("trainer.max_steps"), value("trainer.max_epochs")
        per_epoch = value("data.samples_per_epoch") or images
        if value("data.search_split"):
            per_epoch = per_epoch and per_epoch * float(value("data.search_split_fraction") or 0.5)
        steps = None
        if isinstance(max_steps, int) and max_steps > 0:
            steps = max_steps
        elif isinstance(epochs, int) and epochs > 0 and per_epoch and batch:
            steps = epochs * math.ceil(per_epoch / batch)
        schedule[phase] = {"paper_batch_size": batch, "paper_steps": steps}
    return schedule


def _selected(config: Any, key: str) -> Any:
    """``config``'s value at ``key``; ``None`` when absent or when it needs an earlier phase's artifact."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.select(config, key, throw_on_resolution_failure=True)
    except Exception:  # noqa: BLE001 (an interpolation of a placeholder artifact)
        return None


# ----------------------------------------------------------------------------------------------- main
def table(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per phase: the run (ok or its error), parameters, batch, seconds per
    training step and peak memory; a CPU report leaves the GPU columns (paper's batch, projection) unmeasured."""
    cuda = not str(report["device"]).startswith("cpu")
    gpu_header = ["paper's batch", "paper's steps", "projected"] if cuda else ["GPU: paper's batch, projected schedule"]
    rows = [f"| experiment / phase | dry run | parameters | batch | s/step | peak memory (MB) | {' | '.join(gpu_header)} |",
            "|---" * (6 + len(gpu_header)) + "|"]
    for name, entry in report["experiments"].items():
        status = "ok" if entry["ok"] else f"fails: {(entry['error'] or '')[:100]}"
        phases = entry["phases"] or {"": None}
        for phase, cost in phases.items():
            label = f"`{name}` / {phase}" if phase else f"`{name}`"
            if cost is None:
                rows.append(f"| {label} | {status} | | | | {entry['peak_rss_mb'] or ''} |" + " |" * len(gpu_header))
                continue
            memory = f"{cost['peak_memory_mb']:.0f}" if cost["peak_memory_mb"] else ""
            parameters = f"{cost['parameters'] / 1e6:.2f}M" if cost["parameters"] else "(a task)"
            step = f"{cost['seconds_per_step']:.2f}" if cost["seconds_per_step"] is not None else "(no training)"
            gpu = ([str(cost.get("paper_batch_size", "")), str(cost.get("paper_steps", "")),
                    f"{cost['projected_hours']} h" if cost.get("projected_hours") is not None else ""]
                   if cuda else ["not yet measured on a GPU"])
            rows.append(f"| {label} | {status} | {parameters} | {cost['batch_size'] or ''} | {step} | "
                        f"{memory} | {' | '.join(gpu)} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", help="run these experiments only")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--steps", type=int, default=3, help="training steps per phase (the first is not timed)")
    parser.add_argument("--threads", type=int, help="torch threads of each run (default: torch's choice; 1 on shared "
                        "cores, where a second OpenMP thread waiting for a busy core slows steps down many times)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per experiment")
    parser.add_argument("--data-dir", type=Path, help="where the tiny datasets are written (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    parser.add_argument("--table", action="store_true", help="print a table on stderr")
    arguments = parser.parse_args(argv)
    names = paper_experiments()
    if arguments.only:
        unknown = sorted(set(arguments.only) - set(names))
        if unknown:
            parser.error(f"not paper experiments: {', '.join(unknown)} (choose from {', '.join(names)})")
        names = [name for name in names if name in arguments.only]
    import torch

    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if arguments.device == "cuda" else f"cpu ({os.cpu_count()} cores)",
        "torch": torch.__version__, "threads": arguments.threads or torch.get_num_threads(), "steps": arguments.steps, "train_set_sizes": TRAIN_SET_SIZES, "experiments": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="paper_experiments_") as scratch:
        data_dir = arguments.data_dir or Path(scratch) / "data"
        for name in names:
            entry = run_experiment(name, data_dir, Path(scratch) / "runs" / name, arguments.device,
                                   arguments.steps, arguments.timeout, threads=arguments.threads)
            if arguments.device == "cuda":
                for phase, planned in paper_schedule(name).items():
                    cost = entry["phases"].get(phase)
                    if cost is not None:
                        cost.update(planned)
                        if planned["paper_steps"] and cost["seconds_per_step"]:
                            cost["projected_hours"] = round(planned["paper_steps"] * cost["seconds_per_step"] / 3600, 1)
            report["experiments"][name] = entry
            print(f"{name}: {'ok' if entry['ok'] else entry['error']} ({entry['seconds']} s)", file=sys.stderr,
                  flush=True)
            if arguments.out:  # written as it goes: a long matrix keeps what it measured
                arguments.out.parent.mkdir(parents=True, exist_ok=True)
                arguments.out.write_text(json.dumps(report, indent=1) + "\n")
    report["seconds"] = round(time.perf_counter() - started, 1)
    if arguments.out:
        arguments.out.write_text(json.dumps(report, indent=1) + "\n")
    if arguments.table:
        print(table(report), file=sys.stderr)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
