"""Skip conditions for optional extras that hold on a machine where the extra is absent."""

from __future__ import annotations

import importlib.util


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported, False (never an exception) when it or any parent package is missing.

    ``importlib.util.find_spec`` of a dotted name imports the parent package first and raises
    ``ModuleNotFoundError`` when that parent is absent: ``hydra_plugins`` exists only once some Hydra plugin is installed, so a bare ``find_spec``
    in a ``skipif`` breaks collection on a fresh machine.
    """
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):
        return False
