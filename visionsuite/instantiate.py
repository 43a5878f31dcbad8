"""The one place where config nodes become objects (Hydra ``instantiate``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from visionsuite.errors import ConfigError, VisionSuiteError

log = logging.getLogger(__name__)


def build(node: DictConfig, key: str, **kwargs: Any) -> Any:
    """Instantiate ``node`` (found at config key ``key``), turning failures into one clear error.

    A :class:`VisionSuiteError` raised by the constructor (bad path, bad value) is passed through
    unchanged, so its message reaches the user as written.
    """
    if node is None or "_target_" not in node:
        raise ConfigError(f"Config key `{key}` needs a `_target_` (the class to build); got: {node!r}")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, VisionSuiteError):
            cause = cause.__cause__
        if isinstance(cause, VisionSuiteError):
            raise cause from None
        unknown = _unknown_argument_message(error, node, key)
        if unknown:
            raise ConfigError(unknown) from error
        raise ConfigError(f"Could not build `{key}` ({node.get('_target_')}): {error}") from error


def _unknown_argument_message(error: Exception, node: DictConfig, key: str) -> str | None:
    """One message with the closest arguments when ``key`` got an argument its target does not take.

    E.g. ``+trainer.max_epoch=2``: "`trainer.max_epoch` is not an argument of pytorch_lightning.Trainer. Did you
    mean `trainer.max_epochs`?".
    """
    import difflib
    import inspect
    import re

    from hydra.utils import get_object

    match = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    if match is None or match.group(1) not in node:  # a nested object's argument: Hydra's message names it
        return None
    try:
        parameters = list(inspect.signature(get_object(str(node._target_))).parameters)
    except (ImportError, ValueError, TypeError, AttributeError):
        return None
    close = difflib.get_close_matches(match.group(1), parameters, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(f'`{key}.{name}`' for name in close)}?" if close else ""
    return f"`{key}.{match.group(1)}` is not an argument of {node._target_}.{hint}"


def build_many(group: DictConfig | None, key: str) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (``callbacks``, ``logger``); ``None`` entries are skipped."""
    objects: list[Any] = []
    if not group:
        return objects
    for name, node in group.items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"`{key}.{name}` must be a config with `_target_`; got {node!r}")
        log.debug("Instantiating %s.%s <%s>", key, name, node._target_)
        objects.append(build(node, f"{key}.{name}"))
    return objects


def build_trainer(cfg: DictConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """The Trainer with the configured callbacks and loggers, plus ``extra_callbacks`` (the pipeline's own)."""
    callbacks = [*build_many(cfg.get("callbacks"), "callbacks"), *extra_callbacks]
    loggers = build_many(cfg.get("logger"), "logger")
    return build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
