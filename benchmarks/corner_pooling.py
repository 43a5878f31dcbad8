"""Directional pooling, forward + backward: our cummax pools vs a naive Python loop and a row/column scan.

At 128x128 maps with 256 channels (CenterNet-511's output size), time ``top``/``left``/``bottom``/
``right`` pooling forward + backward with

* ``cummax``: ours (``networks.detection.corner_pooling``), one ``torch.cummax`` per pool;
* ``scan``: a straightforward scan over rows (or columns), ``out[i] = max(x[i], out[i + 1])`` with
  ``torch.maximum`` per row, what the official C++ extension does;
* ``naive``: the definition, one ``torch.max`` over a slice per output element (Python loops).

Every implementation is checked against ours (values and gradients) before timing. Prints one JSON object.

    python benchmarks/corner_pooling.py [--size 128] [--channels 256] [--repeats 5] [--naive-size 32]

The naive loop is too slow for 128x128 (its backward writes a full-size gradient per output element, so it
grows with the square of the map size): by default it is timed at ``--naive-size`` (32) next to ours at
that same size (``small`` entries); ``--naive-size 128`` times it at full size.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

from networks.detection.corner_pooling import bottom_pool, left_pool, reference_pool, right_pool, top_pool

Pool = Callable[[torch.Tensor], torch.Tensor]
OURS: dict[str, Pool] = {"top": top_pool, "left": left_pool, "bottom": bottom_pool, "right": right_pool}
# (axis, reversed): top looks at rows k >= i, so it scans from the last row upwards.
GEOMETRY = {"top": (2, True), "bottom": (2, False), "left": (3, True), "right": (3, False)}


def scan_pool(x: torch.Tensor, direction: str) -> torch.Tensor:
    """Running maximum by one ``torch.maximum`` per row/column."""
    axis, backwards = GEOMETRY[direction]
    slices = list(x.unbind(axis))
    order = range(len(slices) - 1, -1, -1) if backwards else range(len(slices))
    out: list[torch.Tensor | None] = [None] * len(slices)
    running = None
    for index in order:
        running = slices[index] if running is None else torch.maximum(slices[index], running)
        out[index] = running
    return torch.stack(out, dim=axis)  # type: ignore[arg-type]




def forward_backward(
    pool: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor
) -> torch.Tensor:
    leaf = x.detach().requires_grad_(True)
    out = pool(leaf)
    out.backward(grad)
    return leaf.grad  # type: ignore[return-value]


def time_interleaved(
    functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Best (minimum) seconds of each function, run in turns so that all see the same machine state.

    On a shared machine the minimum is the least disturbed by other processes; CUDA is synchronised.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def check_equal(direction: str, device: torch.device) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 9, 11, generator=generator).to(device)
    grad = torch.randn(1, 3, 9, 11, generator=generator).to(device)
    ours = forward_backward(OURS[direction], x, grad)
    for other in (lambda t: scan_pool(t, direction), lambda t: reference_pool(t, direction)):
        torch.testing.assert_close(OURS[direction](x), other(x))
        torch.testing.assert_close(ours, forward_backward(other, x, grad))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, args.channels, args.size, args.size, generator=generator).to(device)
    grad = torch.randn_like(x)
    small = x[..., : args.naive_size, : args.naive_size].contiguous()
    small_grad = grad[..., : args.naive_size, : args.naive_size].contiguous()

    results = {}
    for direction in OURS:
        check_equal(direction, device)
        full = time_interleaved(
            {
                "cummax": lambda d=direction: forward_backward(OURS[d], x, grad),
                "scan": lambda d=direction: forward_backward(lambda t: scan_pool(t, d), x, grad),
            },
            args.repeats,
        )
        small_times = time_interleaved(
            {
                "cummax": lambda d=direction: forward_backward(OURS[d], small, small_grad),
                "naive": lambda d=direction: forward_backward(lambda t: reference_pool(t, d), small, small_grad),
            },
            max(1, args.repeats // 3),
            warmup=1,
        )
        ours, scan = full["cummax"], full["scan"]
        ours_small, naive_small = small_times["cummax"], small_times["naive"]
        results[direction] = {
            "cummax_s": round(ours, 5),
            "scan_s": round(scan, 5),
            "scan_over_cummax": round(scan / ours, 2),
            "small": {
                "size": args.naive_size,
                "cummax_s": round(ours_small, 6),
                "naive_s": round(naive_small, 4),
                "naive_over_cummax": round(naive_small / ours_small, 1),
            },
        }
    report = {
        "benchmark": "directional pooling forward+backward",
        "shape": [1, args.channels, args.size, args.size],
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "results": results,
        "checked_equal": True,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
