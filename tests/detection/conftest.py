"""Detection tests run their many small tensor operations on one torch thread (see ``one_torch_thread``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Applies the shared ``one_torch_thread`` fixture to every detection test."""
