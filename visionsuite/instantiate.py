"""The one place where config nodes become objects (Hydra ``instantiate``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

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
    except InterpolationResolutionError as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, VisionSuiteError):
            raise cause from None
        where = _failing_interpolation(node, key) or f"`{key}`"
        raise ConfigError(f"{where}: {cause if cause is not None else error}") from error
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, VisionSuiteError):
            cause = cause.__cause__
        if isinstance(cause, VisionSuiteError):
            raise cause from None
        message = _unknown_argument_message(error, node, key) or _argument_error_message(error, node, key)
        if message:
            raise ConfigError(message) from error
        raise ConfigError(f"Could not build `{key}` ({node.get('_target_')}): {error}") from error


def _argument_error_message(error: InstantiationException, node: DictConfig, key: str) -> str | None:
    """A library's ``ValueError`` / ``TypeError`` about one of its arguments, as one message naming the config key.

    Networks and other library code check their own arguments and name them first (``"init_channels must be
    positive, got 0"``, MONAI / torchvision style); they know nothing of Hydra. Here the key path is known:
    ``model.net.init_channels must be positive, got 0``.
    """
    import re

    cause = error.__cause__
    if not isinstance(cause, ValueError | TypeError) or isinstance(cause, VisionSuiteError):
        return None
    match = re.search(r"full_key: (\S+)", str(error))
    full_key = match.group(1) if match else key
    relative = full_key[len(key) + 1:] if full_key.startswith(f"{key}.") else ""
    target = OmegaConf.select(node, relative) if relative else node
    if not isinstance(target, DictConfig):
        return f"`{full_key}`: {cause}"
    return argument_error_message(full_key, cause, list(target.keys()), target.get("_target_"))


def argument_error_message(key: str, error: Exception, arguments: Iterable[str], target: object = None) -> str:
    """``error`` (a constructor's ``ValueError`` / ``TypeError``) as one line naming config key ``key``: ``key.<arg>
    ...`` when the message starts with one of ``arguments``, else the key in backquotes, the target, the message."""
    import re

    text = re.sub(r"^`(\w+)`", r"\1", str(error).strip())  # "`name` must ..." reads as "name must ..."
    first = re.match(r"\w+", text)
    if first and first.group(0) in set(arguments):
        return f"{key}.{text}"
    return f"`{key}`{f' ({target})' if target else ''}: {text}"


def call_configured(factory: Any, key: str, **kwargs: Any) -> Any:
    """Call a partial from the config (an optimizer, a scheduler) the way :func:`build` builds objects: a
    ``ValueError`` / ``TypeError`` about an argument becomes one :class:`ConfigError` naming ``key``."""
    try:
        return factory(**kwargs)
    except (ValueError, TypeError) as error:
        if isinstance(error, VisionSuiteError):
            raise
        func = getattr(factory, "func", factory)
        arguments = list(getattr(factory, "keywords", {}) or {})
        name = f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', func)}".lstrip(".")
        raise ConfigError(argument_error_message(key, error, arguments, name)) from error


def _failing_interpolation(node: DictConfig, key: str) -> str | None:
    """The dotted key (and its interpolation) under ``node`` whose value cannot be resolved, e.g. a
    ``${call:...}`` whose function refused its arguments."""
    for name in node.keys():
        child = node._get_node(name)
        if isinstance(child, DictConfig):
            found = _failing_interpolation(child, f"{key}.{name}")
            if found:
                return found
            continue
        try:
            node[name]
        except InterpolationResolutionError:
            return f"{key}.{name} ({child._value()})"
    return None


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


def check_accelerator(cfg: DictConfig) -> None:
    """A GPU trainer on a machine without a GPU stops with one line naming the trainer and the fix."""
    import torch

    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        choice = _trainer_choice()
        raise ConfigError(f"this experiment trains on a GPU (trainer{'=' + choice if choice else ''}: "
                          f"trainer.accelerator={accelerator}) and this machine has none: add trainer=cpu to run it "
                          "on the CPU, or run it on a machine with a CUDA GPU.")


def _trainer_choice() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.choices.get("trainer")


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
    check_accelerator(cfg)
    callbacks = [*build_many(cfg.get("callbacks"), "callbacks"), *extra_callbacks]
    loggers = build_many(cfg.get("logger"), "logger")
    return build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
