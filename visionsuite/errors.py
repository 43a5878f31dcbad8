"""User-facing errors: one clear message that names the path or config key and says how to fix it.

``run.py`` catches :class:`VisionSuiteError` and prints only its message (no traceback), so every
message must stand on its own.
"""

from __future__ import annotations


class VisionSuiteError(Exception):
    """Base class of every error whose message is meant for the user."""


class ConfigError(VisionSuiteError, ValueError):
    """An invalid configuration value (names the key and the accepted values)."""


class DatasetError(VisionSuiteError, RuntimeError):
    """A dataset that is missing, laid out wrongly or corrupt (names the path and how to get the data)."""


class TrainingDivergedError(VisionSuiteError, RuntimeError):
    """A loss or gradient became NaN/inf; the last good checkpoint is kept."""


class RunInterrupted(Exception):
    """The user stopped the run (Ctrl-C) after Lightning's graceful shutdown; ``run.py`` says how to resume it.

    Not a :class:`VisionSuiteError`: nothing is wrong with the input, and ``run.py`` exits with code 130.
    """

    def __init__(self, output_dir: str) -> None:
        super().__init__(f"interrupted; the run directory is {output_dir}")
        self.output_dir = output_dir
