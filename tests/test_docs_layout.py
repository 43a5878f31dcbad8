"""The layout the docs describe is the tree's: every path in docs/adding_a_method.md's method table and in the
README's layout block exists."""

from __future__ import annotations

import itertools
import re

from tests.helpers import REPO_ROOT

ADDING_A_METHOD = REPO_ROOT / "docs" / "adding_a_method.md"


def _expand_braces(text: str) -> list[str]:
    """``a/{b,c}.py`` -> ``[a/b.py, a/c.py]`` (every brace group)."""
    parts = re.split(r"(\{[^}]*\})", text)
    options = [part[1:-1].split(",") if part.startswith("{") else [part] for part in parts]
    return ["".join(choice) for choice in itertools.product(*options)]


def _paths_in(cell: str) -> list[str]:
    tokens = re.findall(r"`([^`]+)`", cell)
    return [token.split(" ")[0].split(":")[0] for token in tokens if "/" in token and "=" not in token]


def _exists(pattern: str) -> bool:
    return any(REPO_ROOT.glob(pattern)) if "*" in pattern else (REPO_ROOT / pattern).exists()


def test_every_path_of_the_method_table_exists() -> None:
    lines = ADDING_A_METHOD.read_text().splitlines()
    header = lines.index(next(line for line in lines if line.startswith("| Method |")))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), lines[header + 2:]))
    assert len(rows) >= 9  # one row per method family
    missing = [path for row in rows for cell in row.split("|")[2:-2] for token in _paths_in(cell)
               for path in _expand_braces(token) if not _exists(path)]
    assert not missing


def test_every_top_level_folder_of_the_readme_layout_exists() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    names = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert names and all((REPO_ROOT / name.rstrip("/")).exists() for name in names), names
    packages = {path.name for path in REPO_ROOT.iterdir() if (path / "__init__.py").is_file() and path.name != "tests"}
    assert packages <= {name.rstrip("/") for name in names}
