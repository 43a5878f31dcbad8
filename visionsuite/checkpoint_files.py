"""What a checkpoint says about itself, read before Lightning loads it: damaged files and format versions.

Every checkpoint the pipeline writes carries ``checkpoint["visionsuite"] = {"format": N, "module": <class>,
"visionsuite": <package version>}`` (:class:`CheckpointRecord`). ``N`` is the ``CHECKPOINT_FORMAT`` class
attribute of the LightningModule (1 when a class does not declare one); a class raises it when the layout of its
parameters changes, and says what changed in ``CHECKPOINT_FORMAT_CHANGES``. Checkpoints without a record are
format 1.

:func:`inspect_start_checkpoint` runs before a run starts from a checkpoint (``ckpt_path=`` or the
``last.ckpt`` that ``resume=`` finds): a truncated or corrupt file, or one of another format than the module
reads, stops the run with one message naming the file (and, for a damaged one, the checkpoints beside it that
still load) instead of a raw ``OSError`` or a state-dict key mismatch.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from visionsuite.errors import ConfigError

RECORD_KEY = "visionsuite"
DEFAULT_FORMAT = 1


class DamagedCheckpointError(ConfigError):
    """A checkpoint file that cannot be read (truncated, corrupt, not a checkpoint)."""


class CheckpointFormatError(ConfigError):
    """A checkpoint written with a parameter layout the module no longer reads."""


@dataclass(frozen=True)
class StartCheckpoint:
    """The checkpoint a run starts from, as far as the pipeline needs to know it."""

    path: Path
    global_step: int
    logging_step: int  # the step Lightning's loggers had reached (``_batches_that_stepped``)
    epoch: int
    #: Weights without a training state (``python -m visionsuite.convert`` writes such files): a run loads them
    #: into the model and starts training afresh instead of continuing.
    weights_only: bool = False


def checkpoint_format(module: Any) -> int:
    """The checkpoint format a module writes and reads (its ``CHECKPOINT_FORMAT``, default 1; an instance may set
    its own when the format depends on the network it holds)."""
    return int(getattr(module, "CHECKPOINT_FORMAT", DEFAULT_FORMAT))


@lru_cache(maxsize=1)
def _package_version() -> str:
    try:
        return importlib.metadata.version("visionsuite")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def checkpoint_record(module: Any) -> dict[str, Any]:
    """The format record a checkpoint of ``module`` carries under ``checkpoint["visionsuite"]``."""
    return {"format": checkpoint_format(module), "module": type(module).__name__, "visionsuite": _package_version()}


class CheckpointRecord(pl.Callback):
    """Writes the format record into every checkpoint and flushes the loggers, so the CSV history on disk
    reaches at least the step of the latest checkpoint (what a resumed run keeps)."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        checkpoint[RECORD_KEY] = checkpoint_record(pl_module)
        for logger in trainer.loggers:
            logger.save()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load ``path`` lazily (tensors memory-mapped) or raise :class:`DamagedCheckpointError` naming it."""
    path = Path(path)
    try:
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # a legacy (non-zip) file
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, IndexError, pickle.UnpicklingError,
            zipfile.BadZipFile) as error:
        if isinstance(error, PermissionError):
            raise ConfigError(f"{path}: cannot read this checkpoint ({error.strerror}).") from None
        text = str(error).strip()
        reason = text.splitlines()[0].split(". ")[0] if text else type(error).__name__  # its first sentence
        raise DamagedCheckpointError(f"{path} is damaged (truncated or corrupt: {reason}); it cannot be "
                                     "loaded.") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise DamagedCheckpointError(f"{path} is not a Lightning checkpoint (no state_dict in it).")
    return checkpoint


def loadable_checkpoints(folder: Path, *, skip: Path | None = None) -> list[Path]:
    """The ``*.ckpt`` files of ``folder`` (newest first) that still load."""
    found = []
    for candidate in sorted(folder.glob("*.ckpt"), key=lambda path: path.stat().st_mtime, reverse=True):
        if skip is not None and candidate.resolve() == skip.resolve():
            continue
        try:
            read_checkpoint(candidate)
        except ConfigError:
            continue
        found.append(candidate)
    return found


def check_format(checkpoint: dict[str, Any], path: Path, module: Any) -> None:
    """Raise :class:`CheckpointFormatError` when ``checkpoint`` has another format than ``module`` reads."""
    record = checkpoint.get(RECORD_KEY) or {}
    writer = str(record.get("module", type(module).__name__))
    if writer != type(module).__name__:
        return  # another class's checkpoint: Lightning's own checks apply
    written, expected = int(record.get("format", DEFAULT_FORMAT)), checkpoint_format(module)
    if written == expected:
        return
    origin = (f"visionsuite {record['visionsuite']}, format {written}" if record
              else f"format {written}: it carries no format record, so it predates them")
    if written < expected:
        changes = getattr(type(module), "CHECKPOINT_FORMAT_CHANGES", {}) or {}
        what = "; ".join(f"format {version}: {text}" for version, text in sorted(changes.items()) if version > written)
        raise CheckpointFormatError(
            f"{path} was written by {writer} in checkpoint format {written} ({origin}); this code reads "
            f"format {expected}{f' ({what})' if what else ''}. Its parameters do not fit this network. Run the "
            "experiment again from the start with this code, or finish that run with the code that wrote it.")
    raise CheckpointFormatError(
        f"{path} was written by {writer} in checkpoint format {written} ({origin}), newer than the format "
        f"{expected} this code reads. Update visionsuite to the version that wrote it.")


def inspect_start_checkpoint(path: str | Path, module: Any, *, given_as: str) -> StartCheckpoint:
    """Read the checkpoint a run starts from; one clear error if it is damaged or of another format.

    Args:
        path: the checkpoint file.
        module: the LightningModule that will load it.
        given_as: how the user named it, e.g. ``ckpt_path=<file>`` or ``resume=<run dir>``; starts the message.
    """
    path = Path(path)
    try:
        checkpoint = read_checkpoint(path)
    except DamagedCheckpointError as error:
        others = loadable_checkpoints(path.parent, skip=path)
        hint = (f" Checkpoints of this run that still load: {', '.join(str(other) for other in others)}; continue "
                f"from one with ckpt_path=<file> (with resume=, the run continues in its directory)."
                if others else " No other checkpoint beside it loads; start the run again.")
        raise DamagedCheckpointError(f"{given_as}: {error}{hint if path.parent.name == 'checkpoints' else ''}") \
            from None
    check_format(checkpoint, path, module)
    loops = checkpoint.get("loops") or {}
    epoch_loop = (loops.get("fit_loop") or {}).get("epoch_loop.state_dict") or {}
    global_step = int(checkpoint.get("global_step", 0))
    return StartCheckpoint(path=path, global_step=global_step,
                           logging_step=int(epoch_loop.get("_batches_that_stepped", global_step)),
                           epoch=int(checkpoint.get("epoch", 0)),
                           weights_only="optimizer_states" not in checkpoint)
