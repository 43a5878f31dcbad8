"""Architecture-search tests run torch on one thread: with 2 shared cores, OpenMP's second thread mostly
waits for a busy core, which makes the many small ops of a search network 10x slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
