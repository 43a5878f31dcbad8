"""Helpers that damage files on purpose, to test that loaders report corrupt data clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def truncate_file(path: str | Path, keep_bytes: int) -> Path:
    """Cut ``path`` down to its first ``keep_bytes`` bytes (as an interrupted copy or download would)."""
    path = Path(path)
    if keep_bytes < 0:
        raise ValueError(f"keep_bytes must be >= 0, got {keep_bytes}")
    with open(path, "r+b") as handle:
        handle.truncate(keep_bytes)
    return path


def write_garbage(path: str | Path, num_bytes: int = 256, seed: int = 0) -> Path:
    """Replace (or create) ``path`` with ``num_bytes`` deterministic random bytes (e.g. an undecodable JPEG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size=num_bytes, dtype=np.uint8).tobytes())
    return path
