"""What a run tells its user at the end: a rich summary panel and ``result.json`` in the run directory."""

from __future__ import annotations

import json
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
    """Print what ran, where its outputs are (relative to the run directory), its final metrics and notes.

    A single job shows all its artifacts and the notes its module declared (``summary_notes``). A chain shows
    the last phase's artifacts, plus the ``headline`` artifacts and the notes of the last phase that declared
    them (read from each phase's ``result.json``), e.g. the cell found by a search before the training phase.
    """
    console = console or Console(stderr=True)
    run_dir = Path(str(result.get("output_dir")))
    phases = result.get("phases") or []
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")  # long paths wrap instead of being cut
    table.add_row("task", f"{result.get('task_name')}  (mode={result.get('mode')})")
    table.add_row("run directory", str(run_dir))
    for phase in phases:
        table.add_row(f"phase {phase['name']}", f"{phase['status']}: {_relative(phase['output_dir'], run_dir)}")
    artifacts = dict(result.get("artifacts") or {})
    headline, notes = _headline(result, artifacts, phases)
    for name, path in headline.items():
        table.add_row(name, _relative(path, run_dir))
    for name, value in (result.get("metrics") or {}).items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    for name, text in notes.items():
        table.add_row(name, str(text))
    console.print(Panel(table, title="visionsuite: run finished", expand=False))


def _headline(result: Mapping[str, Any], artifacts: dict[str, str],
              phases: list[Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """The artifacts and notes to show: a single job's own; for a chain, see :func:`print_summary`."""
    if not phases:
        return artifacts, dict(result.get("notes") or {})
    last_phase = phases[-1]["name"]
    chosen = {name: path for name, path in artifacts.items() if name.split(".")[0] == last_phase}
    latest: dict[str, str] = {}  # headline key -> "<phase>.<key>" of the latest phase that declared it
    notes: dict[str, str] = {}
    for phase in phases:
        phase_result = _phase_result(phase)
        for key in phase_result.get("headline") or []:
            if f"{phase['name']}.{key}" in artifacts:
                latest[key] = f"{phase['name']}.{key}"
        notes.update(phase_result.get("notes") or {})
    for name in latest.values():
        chosen.setdefault(name, artifacts[name])
    return chosen, notes


def _phase_result(phase: Mapping[str, Any]) -> dict[str, Any]:
    path = Path(str(phase.get("output_dir"))) / RESULT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _relative(path: str | Path, run_dir: Path) -> str:
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return str(path)
