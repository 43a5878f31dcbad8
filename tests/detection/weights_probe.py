"""A callback that records what a run evaluates: a digest of every entry of the module's network at test start.

Added to a run with ``+callbacks.weights_probe._target_=tests.detection.weights_probe.NetworkDigest
+callbacks.weights_probe.path=<file.json>``; tests compare the digests with those of the weights they expect.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import pytorch_lightning as pl
import torch


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (equal digests: bitwise equal tensors)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    digest = hashlib.sha256(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def state_digest(state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """:func:`tensor_digest` of every entry, by name."""
    return {name: tensor_digest(tensor) for name, tensor in state.items()}


class NetworkDigest(pl.Callback):
    """Writes ``{name: digest}`` of ``pl_module.net.state_dict()`` to ``path`` when testing starts."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.path.write_text(json.dumps(state_digest(pl_module.net.state_dict())))
