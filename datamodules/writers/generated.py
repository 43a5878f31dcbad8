"""Generated datasets (the demos'): written once into a folder, atomically, with a stamp of their settings."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from visionsuite.errors import DatasetError


def ensure_generated(root: str | Path, write: Callable[[Path], Any], stamp: Mapping[str, Any], *, stamp_file: str,
                     what: str) -> Path:
    """Generate a dataset into ``root`` with ``write(folder)`` unless it is already there with the same ``stamp``.

    The data is written into a temporary sibling folder, stamped (``root/stamp_file`` holds ``stamp`` as JSON)
    and renamed, so an interrupted generation leaves nothing behind and several processes generating at once
    all end with one complete folder (the first rename wins; the others check its stamp).

    Args:
        root: the dataset folder (``data.data_dir``).
        write: writes the whole dataset into the folder it is given.
        stamp: the generator's version and settings; a folder stamped with others is an error.
        stamp_file: the stamp's file name inside ``root``.
        what: the dataset's name in messages ("shapes dataset", "re-ID demo"...).
    """
    root = Path(root)
    stamp = json.loads(json.dumps(dict(stamp)))  # the form it takes once read back (tuples become lists)
    if _matches(root, stamp, stamp_file, what):
        return root
    if root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root} exists and is not a generated {what} (no {stamp_file}); set data.data_dir "
                           "to an empty or new folder.")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        write(staging)
        (staging / stamp_file).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        if root.exists():
            root.rmdir()  # empty (checked above)
        os.rename(staging, root)
    except OSError:
        if not (root / stamp_file).is_file():  # not another process winning the race
            raise
        _matches(root, stamp, stamp_file, what)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return root


def _matches(root: Path, stamp: Mapping[str, Any], stamp_file: str, what: str) -> bool:
    """True when ``root`` holds this generation; an error when it holds one with other settings."""
    path = root / stamp_file
    if not path.is_file():
        return False
    found = json.loads(path.read_text(encoding="utf-8"))
    if found != stamp:
        raise DatasetError(f"{root} holds a {what} generated with other settings ({found}); the config asks for "
                           f"{dict(stamp)}. Delete {root} or set data.data_dir to another folder.")
    return True
