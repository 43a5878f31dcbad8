"""``run.log``: the run's log in its directory (Hydra's job log file), holding Lightning's messages too.

Hydra writes the records of the root logger into ``<run dir>/run.log``. Lightning's own loggers
(``pytorch_lightning``, ``lightning_fabric``) do not propagate to the root when they are imported before Hydra
configures logging, so without :func:`send_library_logs_to_run_log` the file only held the suite's few messages
(usually none). A chain's phases also get a ``run.log`` of their own (:func:`also_log_to`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIBRARY_LOGGERS = ("pytorch_lightning", "lightning_fabric")
_attached: list[tuple[logging.Logger, logging.Handler]] = []


def _root_file_handlers() -> list[logging.FileHandler]:
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]


def send_library_logs_to_run_log() -> None:
    """Give Lightning's loggers the root logger's file handlers (Hydra's ``run.log``), once per job."""
    for library_logger, handler in _attached:
        library_logger.removeHandler(handler)
    _attached.clear()
    for name in LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        if library_logger.propagate:
            continue  # its records reach the root's handlers already
        for handler in _root_file_handlers():
            library_logger.addHandler(handler)
            _attached.append((library_logger, handler))


def record_in_run_log(level: int, message: str) -> None:
    """Write ``message`` into the run's log file(s) only (not the console)."""
    record = logging.LogRecord("visionsuite", level, __file__, 0, message, None, None)
    for handler in _root_file_handlers():
        if record.levelno >= handler.level:
            handler.handle(record)


@contextmanager
def also_log_to(path: Path) -> Iterator[None]:
    """Copy the run's log records (the suite's and Lightning's) into ``path`` while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    existing = _root_file_handlers()
    handler.setFormatter(existing[0].formatter if existing else
                         logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    targets = [logging.getLogger()] + [logging.getLogger(name) for name in LIBRARY_LOGGERS
                                       if not logging.getLogger(name).propagate]
    for target in targets:
        target.addHandler(handler)
    try:
        yield
    finally:
        for target in targets:
            target.removeHandler(handler)
        handler.close()
