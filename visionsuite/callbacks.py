"""Callbacks every experiment shares."""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

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


# Checkpoints are loaded with torch.load(weights_only=True): keep only tensors and plain Python values.
def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    algorithm, keys, position, has_gauss, cached_gaussian = state
    return {"algorithm": algorithm, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _numpy_state_from_plain(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return state["algorithm"], keys, state["position"], state["has_gauss"], state["cached_gaussian"]
