"""What a run tells its user at the end: a rich summary panel and ``result.json`` in the run directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from visionsuite.io import atomic_write_json

RESULT_FILE = "result.json"


def write_result(output_dir: str | Path, result: Mapping[str, Any]) -> Path:
    """Write ``result.json``: the run's final metrics and artifact paths; its presence marks a finished phase."""
    return atomic_write_json(Path(output_dir) / RESULT_FILE, dict(result))


# Artifacts worth a line in a chain's summary: the last phase's, plus the last search's cell and drawings.
_HEADLINE_ARTIFACTS = ("genotype", "normal_cell", "reduction_cell", "arch_weights")


def print_summary(result: Mapping[str, Any], console: Console | None = None) -> None:
    """Print what ran, where its outputs are (relative to the run directory), and its final metrics."""
    console = console or Console(stderr=True)
    run_dir = Path(str(result.get("output_dir")))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")  # long paths wrap instead of being cut
    table.add_row("task", f"{result.get('task_name')}  (mode={result.get('mode')})")
    table.add_row("run directory", str(run_dir))
    for phase in result.get("phases") or []:
        table.add_row(f"phase {phase['name']}", f"{phase['status']}: {_relative(phase['output_dir'], run_dir)}")
    artifacts = dict(result.get("artifacts") or {})
    for name, path in _headline(artifacts, result.get("phases") or []).items():
        table.add_row(name, _relative(path, run_dir))
    for name, value in (result.get("metrics") or {}).items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    texts = [path for name, path in artifacts.items() if name.split(".")[-1] == "genotype_text"]
    if texts and Path(texts[-1]).is_file():  # a search's (last) genotype, in its readable form
        readable = Path(texts[-1]).read_text(encoding="utf-8").split("Genotype(")[0].strip()
        table.add_row("genotype", readable)
    console.print(Panel(table, title="visionsuite: run finished", expand=False))


def _headline(artifacts: dict[str, str], phases: list[Mapping[str, Any]]) -> dict[str, str]:
    """A single job's artifacts; for a chain, the last phase's and the last search's cell and drawings."""
    if not phases:
        return artifacts
    last_phase = phases[-1]["name"]
    chosen = {name: path for name, path in artifacts.items() if name.split(".")[0] == last_phase}
    for key in _HEADLINE_ARTIFACTS:
        found = [name for name in artifacts if name.split(".")[-1] == key]
        if found:
            chosen.setdefault(found[-1], artifacts[found[-1]])
    return chosen


def _relative(path: str | Path, run_dir: Path) -> str:
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return str(path)
