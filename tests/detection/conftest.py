"""Detection tests run their small tensor operations on one intra-op thread.

The decoder works on many small tensors; with two OpenMP threads on two cores that other processes also
use, each such operation can wait a long time for the second thread (10x slower tests on a busy machine).
The previous thread count is restored after every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_intra_op_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
