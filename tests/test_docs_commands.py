"""Every ``python run.py ...`` command shown in README.md and docs/*.md composes into a valid config.

The commands are extracted from the Markdown (code blocks and inline code, continuation lines joined,
comments dropped), placeholders such as ``<file.ckpt>`` are replaced by a dummy path, sweeps (``seed=0,1``)
by their first value, and the root config is composed with Hydra's compose API and resolved. Nothing runs.
Commands that need an optional extra (Optuna, SLURM) are skipped when it is not installed; ``resume=``
commands name a run directory that does not exist here and are checked by the resume tests instead.
"""

from __future__ import annotations

import re
import shlex

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.helpers import REPO_ROOT
from tests.optional import module_available

PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
_COMMAND = re.compile(r"python3? run\.py([^`\n#]*)")
_NEEDS = {"hparams_search=": "hydra_plugins.hydra_optuna_sweeper", "hydra/launcher=slurm": "hydra_plugins.hydra_submitit_launcher"}


def documented_commands() -> list[tuple[str, str]]:
    """``(where, argument string)`` of every ``python run.py`` command in the pages."""
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        number = 0
        while number < len(lines):
            start, line = number + 1, lines[number]
            while line.endswith("\\") and number + 1 < len(lines):  # shell continuation lines
                number += 1
                line = line[:-1] + " " + lines[number].strip()
            number += 1
            for match in _COMMAND.finditer(line):
                arguments = match.group(1).strip()
                if "..." in arguments:
                    continue  # prose about commands in general ("python run.py experiment=... ")
                found.append((f"{page.relative_to(REPO_ROOT)}:{start}", arguments))
    return found


def overrides_of(arguments: str) -> list[str]:
    """Hydra overrides of a documented command line, ready for ``compose``."""
    arguments = re.sub(r"<[^<>]*>", "placeholder", arguments)
    words = [word for word in shlex.split(arguments) if not word.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(words)
    overrides = []
    for word, override in zip(words, parsed, strict=True):
        if override.is_sweep_override():
            overrides.append(f"{override.get_key_element()}={next(override.sweep_string_iterator())}")
        else:
            overrides.append(word)
    return overrides


COMMANDS = documented_commands()


def test_the_pages_show_commands() -> None:
    assert len(COMMANDS) > 20
    assert any(where.startswith("README.md") for where, _ in COMMANDS)


@pytest.mark.parametrize(("where", "arguments"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_composes(make_config, where: str, arguments: str) -> None:
    if "resume=" in arguments:
        pytest.skip("resume= needs an existing run directory (covered by the resume tests)")
    for marker, module in _NEEDS.items():
        if marker in arguments and not module_available(module):
            pytest.skip(f"needs the optional extra providing {module}")
    if re.search(r"experiment=<", arguments):
        pytest.skip("the experiment itself is a placeholder")
    cfg = make_config(*overrides_of(arguments))
    if "<" not in arguments:  # placeholders name files that do not exist here; resolvers may read them
        OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert cfg.get("phases") or cfg.model._target_, f"{where}: `python run.py {arguments}` composes no model"
