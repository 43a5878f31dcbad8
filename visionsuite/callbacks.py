"""Callbacks every experiment shares."""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from visionsuite.errors import ConfigError

log = logging.getLogger(__name__)


class RandomStateCheckpoint(pl.Callback):
    """Saves every random stream in the checkpoint and restores it when a run resumes.

    Lightning restores weights, optimizers, schedulers and loop counters, but not the random number
    generators that drive augmentation, drop-path and dropout. This callback stores the Python, NumPy,
    torch (CPU and CUDA) states at checkpoint time and puts them back at the start of the first training
    epoch after a resume, the same point in the loop where the uninterrupted run continued. Together with
    the epoch-seeded samplers of ``datamodules.sampling`` a resumed CPU run reaches the same weights as an
    uninterrupted one.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "python": random.getstate(),
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        random.setstate(state["python"])
        np.random.set_state(_numpy_state_from_plain(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            cuda_states = state["cuda"]
            if len(cuda_states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda_states)
        log.info("Restored the random streams saved in the checkpoint (epoch %d).", trainer.current_epoch)


class LastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` without a monitor (``checkpoints/last.ckpt``) that also saves when fitting ends.

    Lightning saves after every validation (or training epoch); a step-based run that stops between two
    validations, or one stopped early, would otherwise end with an older ``last.ckpt`` or none at all, leaving
    nothing for ``mode=test`` / ``mode=predict``. An interrupted run (Ctrl-C, a crash) does not reach
    ``on_train_end``: its ``last.ckpt`` stays the one of its last validation, the point ``resume=`` continues from.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.monitor is not None:
            raise ConfigError(f"callbacks.last_checkpoint: monitor must be null (got {self.monitor!r}); the best "
                              "checkpoint by a metric is callbacks.model_checkpoint.")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer):  # skips when already saved at this step
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))


class ValidateShortRuns(pl.Callback):
    """Validates once at the end of a run that would otherwise end before its first validation.

    ``trainer.max_steps`` shorter than the validation interval (``val_check_interval``, or the epoch of an
    epoch-based run: ``trainer.max_steps=2`` on a 250-epoch ImageNet schedule), or ``trainer.max_epochs`` below
    ``check_val_every_n_epoch``, would end without any validation: no metric to select or report, no best
    checkpoint. The interval is shortened to the run's length, so its last step (epoch) validates.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.limit_val_batches == 0:
            return
        self._validate_at_max_steps(trainer)
        every, max_epochs = trainer.check_val_every_n_epoch, trainer.max_epochs
        if every is not None and max_epochs is not None and 0 < max_epochs < every:
            trainer.check_val_every_n_epoch = max_epochs
            log.info("max_epochs=%d is shorter than check_val_every_n_epoch=%d: validating after epoch %d.",
                     max_epochs, every, max_epochs)

    @staticmethod
    def _validate_at_max_steps(trainer: pl.Trainer) -> None:
        """A run of ``max_steps`` that ends before its first validation validates at its last step: a step-based
        run (``check_val_every_n_epoch=null``) whose interval is longer than the run, or an epoch-based run that
        ends inside its first epoch without a validation in it."""
        max_steps, interval, every = trainer.max_steps, trainer.val_check_batch, trainer.check_val_every_n_epoch
        if max_steps is None or max_steps <= 0 or trainer.global_step >= max_steps:
            return
        if every is None:  # validation every `interval` batches counted over the whole run
            last_batch = max_steps * trainer.accumulate_grad_batches
            if isinstance(interval, int) and interval > last_batch:
                trainer.val_check_batch = last_batch
                log.info("max_steps=%d is shorter than the validation interval (%d batches): validating at step %d.",
                         max_steps, interval, max_steps)
            return
        last_batch = (max_steps - trainer.global_step) * trainer.accumulate_grad_batches  # within this epoch
        epoch_batches = trainer.num_training_batches
        if isinstance(epoch_batches, int) and last_batch >= epoch_batches:
            return  # the run reaches the end of its epoch, which validates as scheduled
        validates_in_this_epoch = ((trainer.current_epoch + 1) % every == 0
                                   and isinstance(interval, int) and interval <= last_batch)
        if not validates_in_this_epoch:
            trainer.val_check_batch = last_batch
            trainer.check_val_every_n_epoch = 1
            log.info("max_steps=%d ends inside the epoch, before its validation: validating at step %d.",
                     max_steps, max_steps)


# Checkpoints are loaded with torch.load(weights_only=True): keep only tensors and plain Python values.
def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    algorithm, keys, position, has_gauss, cached_gaussian = state
    return {"algorithm": algorithm, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _numpy_state_from_plain(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["algorithm"], keys, state["position"], state["has_gauss"], state["cached_gaussian"]
