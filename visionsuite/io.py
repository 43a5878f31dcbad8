"""Small file helpers shared by every phase: atomic writes, so an interrupted run never leaves half a file, and
whether a path given in the config is set at all."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK_LOCK = threading.Lock()


#: What a path-like config value holds when it is not given: null, an empty string, or null typed as text.
UNSET_VALUES = (None, "", "None", "null")


def is_unset(value: object) -> bool:
    """Whether a config value (a path, a checkpoint) means "not given" (see :data:`UNSET_VALUES`)."""
    return value is None or (isinstance(value, str) and value in UNSET_VALUES)


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the process's umask (0644 under the usual 022).

    ``tempfile.mkstemp`` creates its files 0600; every file the suite writes through a temporary file gets this
    mode instead, so ``result.json`` is as readable as ``metrics.csv`` or a checkpoint.
    """
    with _UMASK_LOCK:
        umask = os.umask(0)
        os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it is synced, given :func:`default_file_mode` and
    renamed to ``path`` (all or nothing); on any error it is removed. ``mode``: ``"w"`` (UTF-8 text) or ``"wb"``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp_name, default_file_mode())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (all or nothing)."""
    with atomic_file(path) as stream:
        stream.write(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
