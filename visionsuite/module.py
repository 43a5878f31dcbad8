"""The base every method's LightningModule subclasses: what the steps of all methods share.

A method module keeps only its own training / validation / test steps. This base gives it:

* ``configure_optimizers`` from the partial optimizer / scheduler of its config (``_partial_: true``),
  bound to :meth:`SuiteModule.optimizer_parameters` (all parameters unless the method narrows them, e.g.
  Pruning from Scratch trains its gates only), with the scheduler stepped per ``epoch`` or per ``step``;
* :func:`ensure_finite`, the guard that stops a diverged run with one clear message;
* a default :meth:`SuiteModule.size_report` (parameters and multiply-adds of ``self.net`` on
  :meth:`SuiteModule.example_input`), what ``mode=summary`` prints;
* :meth:`SuiteModule.log_images`, one way to send pictures to every logger that takes them;
* :func:`plain`, which turns Hydra/OmegaConf containers into plain Python ones before they are stored;
* :meth:`SuiteModule.official_format`: how ``ckpt_path=<official file>`` (the authors' released checkpoint) is
  converted into this module's network;
* ``artifacts``: files the run produced, by name (what ``result.json`` lists and later phases consume);
  ``headline_artifacts`` names those a chain's summary shows, ``summary_notes`` adds readable lines to it;
* for methods with several optimizers (manual optimization, e.g. the bilevel architecture search):
  :meth:`SuiteModule.extra_optimizers` and :meth:`SuiteModule.step_schedulers_manually`.

Files and pictures are written by callbacks a module declares (Lightning's ``configure_callbacks``), so the
steps stay reusable without them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from PIL import Image

from visionsuite.complexity import count_multiply_adds, count_parameters
from visionsuite.errors import ConfigError, TrainingDivergedError
from visionsuite.instantiate import call_configured
from visionsuite.official_weights import OfficialFormat

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]
SCHEDULER_INTERVALS = ("epoch", "step")
Picture = Image.Image | str | Path | np.ndarray


def plain(value: Any) -> Any:
    """``value`` with every OmegaConf container turned into a plain ``dict`` / ``list`` (resolved)."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def ensure_finite(loss: torch.Tensor, where: str, epoch: int, step: int) -> None:
    """Stop training with a clear message when ``loss`` is NaN or infinite.

    The exception propagates out of ``trainer.fit``; no checkpoint is written for the failing epoch, so
    ``checkpoints/last.ckpt`` stays the last good one.
    """
    value = float(loss.detach())
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"The {where} became {value} at epoch {epoch}, step {step}. Training stopped; the last good "
            "checkpoint is checkpoints/last.ckpt in the run directory. Lower the learning rate "
            "(model.optimizer.lr) or keep gradient clipping on (trainer.gradient_clip_val), then resume with "
            "ckpt_path=<that file>."
        )


class SuiteModule(pl.LightningModule):
    """Base LightningModule of the suite (see the module docstring).

    Args:
        optimizer: a partial optimizer (``torch.optim.SGD`` with ``_partial_: true``), called with ``params``.
        scheduler: a partial learning-rate scheduler, called with ``optimizer``; ``None`` for a constant rate.
        scheduler_interval: ``epoch`` or ``step``: when Lightning steps the scheduler.
        config_name: the model config file named in the message when ``optimizer`` is missing.
    """

    #: Format of the parameter layout this class's checkpoints have (``visionsuite.checkpoint_files``): raise it
    #: when a change to the network makes earlier checkpoints unloadable, and say what changed in
    #: ``CHECKPOINT_FORMAT_CHANGES`` ({format: description}); loading another format stops with one message.
    CHECKPOINT_FORMAT: ClassVar[int] = 1
    CHECKPOINT_FORMAT_CHANGES: ClassVar[Mapping[int, str]] = {}

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        config_name: str = "the model's config",
    ) -> None:
        super().__init__()
        if scheduler_interval not in SCHEDULER_INTERVALS:
            raise ConfigError(f"model.scheduler_interval={scheduler_interval!r}: use one of "
                              f"{', '.join(SCHEDULER_INTERVALS)}.")
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval
        self._optimizer_config_name = config_name
        self.artifacts: dict[str, str] = {}
        self.summary_notes: dict[str, str] = {}

    #: Artifact names (keys of ``artifacts``) a chain's summary shows even when the phase is not the last.
    headline_artifacts: tuple[str, ...] = ()

    # ------------------------------------------------------------------ optimisation
    def optimizer_parameters(self) -> Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]:
        """What the optimizer updates: every parameter unless a method says otherwise."""
        return self.parameters()

    def extra_optimizers(self) -> list[torch.optim.Optimizer]:
        """Optimizers after the main one (manual optimization only; the scheduler drives the main one)."""
        return []

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ConfigError(f"model.optimizer is not set: give a partial optimizer (see {self._optimizer_config_name}).")
        optimizer = call_configured(self.optimizer_factory, "model.optimizer", params=self.optimizer_parameters())
        extra = self.extra_optimizers()
        schedulers = []
        if self.scheduler_factory is not None:
            schedulers.append({"scheduler": call_configured(self.scheduler_factory, "model.scheduler",
                                                            optimizer=optimizer),
                               "interval": self.scheduler_interval})
        if extra:
            return [optimizer, *extra], schedulers
        if not schedulers:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": schedulers[0]}

    def step_schedulers_manually(self, batch_idx: int) -> None:
        """Manual optimization: step the schedulers as Lightning would (call from ``on_train_batch_end``).

        ``step`` interval: after every batch; ``epoch`` interval: after the epoch's last training batch,
        before validation and the end-of-epoch checkpoint, so a resumed run continues at the right rate.
        """
        if self.scheduler_interval == "epoch" and batch_idx + 1 < self.trainer.num_training_batches:
            return
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    def expected_num_classes(self) -> int | None:
        """The class count the model was built for (``hparams.num_classes``), checked against the data's."""
        value = self.hparams.get("num_classes")
        return None if value is None else int(value)

    # ------------------------------------------------------------------ official checkpoints
    def official_format(self) -> OfficialFormat | None:
        """How this module reads its paper's official checkpoint (``ckpt_path=<official file>``, see
        ``visionsuite.official_weights``): the network the weights load into and its family's key converter.
        ``None`` (the default): the method has no official checkpoint format."""
        return None

    # ------------------------------------------------------------------ size report (mode=summary)
    def example_input(self) -> torch.Tensor:
        """One input of the size the papers count multiply-adds at (``hparams.input_size``, 3 channels)."""
        size = int(self.hparams.get("input_size", 32))
        channels = int(self.hparams.get("in_channels", 3))
        return torch.zeros(1, channels, size, size)

    def size_report(self) -> dict[str, float]:
        """Parameters (millions) and multiply-adds (millions) of ``self.net`` on :meth:`example_input`."""
        network = getattr(self, "net", None)
        if network is None:
            raise ConfigError(f"mode=summary: {type(self).__name__} has no `net` to measure.")
        example = self.example_input()
        return {
            "params_m": round(count_parameters(network) / 1e6, 4),
            "madds_m": round(count_multiply_adds(network, example) / 1e6, 2),
            "input_size": int(example.shape[-1]),
        }

    # ------------------------------------------------------------------ pictures
    def log_images(self, key: str, pictures: Sequence[Picture], captions: Sequence[str] | None = None) -> list[str]:
        """Send ``pictures`` to every logger that takes images; return ``logger:key`` for each one sent.

        W&B-style loggers (``log_image``) and TensorBoard (``add_image`` on its writer) are supported; others
        (CSV) are skipped. Pictures may be PIL images, file paths or HxWx3 uint8 arrays.
        """
        if not pictures or self._trainer is None:
            return []
        return [f"{kind}:{key}" for kind in send_images(self.loggers, key, pictures, self.global_step, captions)]

    def log_text(self, key: str, text: str) -> list[str]:
        """Send ``text`` to every logger that takes text (W&B ``log_text``, TensorBoard ``add_text``)."""
        if self._trainer is None:
            return []
        return [f"{kind}:{key}" for kind in send_text(self.loggers, key, text, self.global_step)]


def send_images(loggers: Iterable[Any], key: str, pictures: Sequence[Picture], step: int,
                captions: Sequence[str] | None = None) -> list[str]:
    """Send ``pictures`` under ``key`` to every logger that takes images; return the loggers' class names.

    What :meth:`SuiteModule.log_images` does, for callbacks that hold only the trainer's loggers.
    """
    sent = []
    for logger in loggers:
        kind = type(logger).__name__
        if hasattr(logger, "log_image"):
            images = [str(p) if isinstance(p, Path) else p for p in pictures]
            extra = {"caption": list(captions)} if captions else {}
            logger.log_image(key=key, images=images, step=step, **extra)
            sent.append(kind)
        elif hasattr(getattr(logger, "experiment", None), "add_image"):
            for index, picture in enumerate(pictures):
                tag = key if len(pictures) == 1 else f"{key}/{index}"
                logger.experiment.add_image(tag, _as_array(picture), step, dataformats="HWC")
            sent.append(kind)
    return sent


def send_text(loggers: Iterable[Any], key: str, text: str, step: int) -> list[str]:
    """Send ``text`` under ``key`` to every logger that takes text; return the loggers' class names."""
    sent = []
    for logger in loggers:
        kind = type(logger).__name__
        if hasattr(logger, "log_image"):  # W&B-style: text as a one-cell table, when the logger has log_text
            if hasattr(logger, "log_text"):
                logger.log_text(key=key, columns=["text"], data=[[text]], step=step)
                sent.append(kind)
        elif hasattr(getattr(logger, "experiment", None), "add_text"):
            # TensorBoard renders markdown: indent every line so the text keeps its layout.
            logger.experiment.add_text(key, "\n".join("    " + line for line in text.splitlines()), step)
            sent.append(kind)
    return sent


def _as_array(picture: Picture) -> np.ndarray:
    if isinstance(picture, np.ndarray):
        return picture
    if isinstance(picture, str | Path):
        with Image.open(picture) as image:
            return np.asarray(image.convert("RGB"))
    return np.asarray(picture.convert("RGB"))


def run_dir(module: pl.LightningModule) -> Path:
    """The run directory a module writes into (the Trainer's ``default_root_dir``)."""
    return Path(module.trainer.default_root_dir)


__all__ = ["OptimizerFactory", "SchedulerFactory", "SuiteModule", "ensure_finite", "plain", "run_dir", "send_images",
           "send_text"]
