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


def print_summary(result: Mapping[str, Any], console: Console | None = None) -> None:
    """Print what ran, where its outputs are, and its final metrics."""
    console = console or Console(stderr=True)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")  # paths wrap instead of being cut
    table.add_row("task", f"{result.get('task_name')}  (mode={result.get('mode')})")
    table.add_row("run directory", str(result.get("output_dir")))
    for name, path in (result.get("artifacts") or {}).items():
        table.add_row(name, str(path))
    for name, value in (result.get("metrics") or {}).items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    for phase in result.get("phases") or []:
        table.add_row(f"phase {phase['name']}", f"{phase['status']}: {phase['output_dir']}")
    texts = [path for name, path in (result.get("artifacts") or {}).items() if name.split(".")[-1] == "genotype_text"]
    if texts and Path(texts[-1]).is_file():  # a search's (last) genotype, as readable text
        table.add_row("genotype", Path(texts[-1]).read_text(encoding="utf-8").strip())
    console.print(Panel(table, title="visionsuite: run finished", expand=False))
