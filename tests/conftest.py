"""Shared fixtures: compose the real configs with Hydra's compose API, shrunk to test size."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, restoring the previous count afterwards.

    Tests made of many small tensor operations (search networks, detection decoding) are up to 10x
    slower with OpenMP's second thread when the two cores are shared with other processes.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
