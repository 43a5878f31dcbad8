"""Compiling the search network's forward pass (and, through AOTAutograd, its backward): the search module's
``compile`` setting.

The aim is the host overhead of a DARTS / PC-DARTS search iteration on a GPU (about 110,000 ATen calls per
first-order iteration; arXiv:1806.09055 Alg. 1, arXiv:1907.05737 Sec. 3). The switch compiles
:meth:`~networks.nas.search_space.SearchNetwork.forward` with ``torch.compile(dynamic=False)``; the gradients of
every architecture-gradient mode are still taken with ``torch.autograd.grad`` on its output, so the three gradient
modes, partial channels and edge normalisation run unchanged.

Values of the setting:

* ``false`` (default): eager, the reference.
* ``default`` / ``max-autotune-no-cudagraphs``: Inductor kernels, no CUDA graphs (CPU or GPU). On CPU the first
  compilation of the 8-cell network takes many minutes on a small machine; not measured as a gain here.
* ``reduce-overhead``: Inductor kernels replayed as CUDA graphs (GPU only).
* ``cudagraphs``: dynamo's ``cudagraphs`` backend: the forward and backward ATen graphs (AOTAutograd) captured
  as CUDA graphs with today's kernels, no code generation (GPU only; compiles in seconds, not minutes).
* ``aot_eager``: the same dynamo + AOTAutograd graphs run by the eager kernels (CPU or GPU; no speed-up). The
  check that capture itself keeps a search faithful: where ``cudagraphs`` or Inductor disagree with eager and
  ``aot_eager`` does not, the difference is in the backend. It is what the CPU tests run through ``run.py``.

The GPU-only settings are refused on CPU with a ``ValueError`` (the search module names its config key), never a
silent fallback.

Dynamic elements of the step, handled explicitly (not captured):

* ``detach_arch`` (weight step vs architecture step) is a Python flag: two compiled graphs, one per value.
* The P-DARTS skip-connect dropout rate (arXiv:1904.12760 Sec. 3.3, decayed every epoch) is a Python float of
  every :class:`~networks.nas.search_space.MixedOp`: :func:`recompile_for_skip_dropout` recompiles when it changes
  (once per epoch, logged) instead of letting guards pile up until dynamo gives up.
* The divergence checks (``ensure_finite``, the architecture gradient's ``isfinite`` test) read values on the
  host: they stay outside the compiled region, one synchronisation each per iteration.
* The optimizer steps, gradient clipping and DDP averaging stay eager (capturing them needs capturable
  optimizers and static buffers: the next step, to be measured on a GPU; docs/architecture_search.md).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

#: ``compile`` values and the ``torch.compile`` (backend, mode) each selects (None: eager).
COMPILE_MODES: dict[str, tuple[str, str | None] | None] = {
    "false": None,
    "default": ("inductor", "default"),
    "max-autotune-no-cudagraphs": ("inductor", "max-autotune-no-cudagraphs"),
    "reduce-overhead": ("inductor", "reduce-overhead"),
    "cudagraphs": ("cudagraphs", None),
    "aot_eager": ("aot_eager", None),
}
#: Settings that replay CUDA graphs and so need a CUDA device.
CUDA_GRAPH_MODES = frozenset({"reduce-overhead", "cudagraphs"})


def normalize_compile(value: Any) -> str:
    """The ``compile`` setting as a key of :data:`COMPILE_MODES` (``False``/``None`` -> ``"false"``).

    Raises:
        ValueError: an unknown value, naming the accepted ones.
    """
    if value is None or value is False:
        return "false"
    if isinstance(value, str) and value in COMPILE_MODES:
        return value
    raise ValueError(f"compile={value!r}: must be one of false, {', '.join(list(COMPILE_MODES)[1:])} "
                     "(false: eager; reduce-overhead and cudagraphs need a GPU; aot_eager: capture without "
                     "code generation, to check a capture against eager)")


def check_device(setting: str, device: torch.device) -> None:
    """Refuse a CUDA-graph mode on a device without CUDA graphs.

    Raises:
        ValueError: ``compile=reduce-overhead`` or ``cudagraphs`` on a non-CUDA device.
    """
    if setting in CUDA_GRAPH_MODES and device.type != "cuda":
        raise ValueError(f"compile={setting}: CUDA graphs need a CUDA device, and this run is on {device.type}; "
                         "use a GPU, or compile=false (eager) / default (Inductor without graphs) here")


def compile_forward(network: torch.nn.Module, setting: str, backend: str | None = None) -> None:
    """Replace ``network.forward`` by its compiled version (no-op for ``"false"``).

    The parameters and the state dict are untouched (checkpoints and resume are those of the eager network).
    A new network (a P-DARTS stage) is compiled anew by calling this again.

    Args:
        network: the search network.
        setting: a :func:`normalize_compile` value.
        backend: overrides the setting's ``torch.compile`` backend (tests use ``aot_eager``: the same dynamo
            and AOTAutograd graphs, no C++ compilation, no CUDA graphs).
    """
    choice = COMPILE_MODES[setting]
    if choice is None:
        return
    backend = backend or choice[0]
    eager = type(network).forward.__get__(network)
    options: dict[str, Any] = {"dynamic": False, "backend": backend}
    if backend == "inductor":
        options["mode"] = choice[1]
    network.forward = torch.compile(eager, **options)  # type: ignore[method-assign]
    log.info("compile=%s: search network forward compiled (backend %s)", setting, backend)


def recompile_for_skip_dropout(network: torch.nn.Module, setting: str, rate: float,
                               backend: str | None = None) -> None:
    """Recompile after the P-DARTS skip-dropout rate changed (a dynamic element: a Python float of the graph).

    Drops dynamo's caches so that one epoch's graph replaces the previous one instead of adding a guard
    variant per epoch (dynamo's per-function cache limit would otherwise end in a silent eager fallback).
    """
    if COMPILE_MODES[setting] is None:
        return
    torch._dynamo.reset()
    compile_forward(network, setting, backend)
    log.info("compile=%s: P-DARTS skip-connect dropout is now %.4g; the forward is recompiled", setting, rate)


__all__ = ["COMPILE_MODES", "CUDA_GRAPH_MODES", "check_device", "compile_forward", "normalize_compile",
           "recompile_for_skip_dropout"]
