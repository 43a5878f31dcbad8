"""Golden outputs of the official models (``tests/fixtures/golden/<name>.pt``) and the weight rule they were made with.

Each golden file is a dict: ``keys`` (the official model's ``state_dict`` names, shapes and dtypes, in order),
``inputs`` (fixed inputs), ``outputs`` (what the official model computed on them, float32 on CPU, eval mode unless
a name says ``train_``), ``source`` (repository, commit, file, constructor call) and ``notes``. The weights are not
stored: :func:`golden_state_dict` rebuilds them exactly from ``keys`` (a seeded value per entry, computed in float64
then cast), so a test recreates the official state dict, writes it in the official file format, converts it with
the converter users get, and compares outputs.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

GOLDEN_DIR = Path(__file__).resolve().parent / "fixtures" / "golden"


def golden_tensor(index: int, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """The value of the ``index``-th entry ``name`` of a golden state dict (depends on index, name suffix, shape)."""
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)  # num_batches_tracked and other integer buffers
    generator = torch.Generator().manual_seed(1000 + index)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        value = 0.5 + torch.rand(shape, generator=generator, dtype=torch.float64)
    elif leaf in ("running_mean", "bias") or (len(shape) <= 1 and leaf != "weight"):
        value = 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
    elif len(shape) <= 1:  # 1-d weights: BatchNorm / LayerNorm scales
        value = 1.0 + 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)
    else:  # convolutions and linear layers: He-scaled normal
        value = torch.randn(shape, generator=generator, dtype=torch.float64) * math.sqrt(1.0 / math.prod(shape[1:]))
    return value.to(dtype)


def golden_state_dict(keys: list[tuple[str, tuple[int, ...], str]]) -> dict[str, torch.Tensor]:
    """The official model's state dict for ``keys`` (``(name, shape, dtype)`` in its ``state_dict`` order)."""
    state = {}
    for index, (name, shape, dtype) in enumerate(keys):
        resolved = getattr(torch, dtype.replace("torch.", "")) if isinstance(dtype, str) else dtype
        state[name] = golden_tensor(index, name, tuple(shape), resolved)
    return state


@lru_cache(maxsize=4)
def load_golden(name: str) -> dict[str, Any]:
    """The golden file ``tests/fixtures/golden/<name>.pt``."""
    return torch.load(GOLDEN_DIR / f"{name}.pt", weights_only=True)


def write_official_file(path: Path, state_dict: dict[str, torch.Tensor], wrapper: str = "plain") -> Path:
    """Write ``state_dict`` as an official repository would: ``plain`` (``torch.save(model.state_dict())``),
    ``state_dict`` (``{'state_dict': ...}``, DARTS's ImageNet model), ``module`` (a ``DataParallel`` model's state dict:
    ``module.`` on every key, CenterNet's ``.pkl``) or ``training`` (``{'epoch', 'arch', 'state_dict': <module.
    keys>, 'best_acc1', 'optimizer'}``, a ``model_best.pth.tar`` of the ImageNet-example training scripts)."""
    prefixed = {f"module.{name}": tensor for name, tensor in state_dict.items()}
    payload: Any = {
        "plain": state_dict,
        "state_dict": {"state_dict": state_dict},
        "module": prefixed,
        "training": {"epoch": 3, "arch": "official", "state_dict": prefixed, "best_acc1": 0.5,
                     "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}},
    }[wrapper]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def max_abs_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference, shapes checked first."""
    assert tuple(actual.shape) == tuple(expected.shape), (tuple(actual.shape), tuple(expected.shape))
    return float((actual.double() - expected.double()).abs().max())
