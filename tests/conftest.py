"""Shared fixtures: compose the real configs with Hydra's compose API, shrunk to test size."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

from hydra.core.global_hydra import GlobalHydra  # noqa: E402

import visionsuite.resolvers  # noqa: E402,F401
from tests.helpers import compose_config  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_hydra() -> Iterator[None]:
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


@pytest.fixture
def make_config(tmp_path: Path):
    """``make_config(*overrides)``: the composed run config writing into ``tmp_path/run``."""

    def factory(*overrides: str, output_dir: Path | None = None):
        return compose_config(list(overrides), output_dir or tmp_path / "run", data_dir=tmp_path / "data")

    return factory
