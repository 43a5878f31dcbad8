"""Cost of one DARTS search iteration (architecture step + weight step) per architecture-gradient mode.

Targets: second order at most 2.6x and amended at most 3.1x the wall time of first order (counting
forward/backward passes gives 2.5x and 3.0x). Measured in one run, on one machine, on the DARTS search
network (C=16, 8 cells, 32x32 inputs, batch 64, channels-last like ``model.channels_last``, by
default). Prints one JSON object.

The run also measures, at the same batch size: the PC-DARTS search network (K=4 partial channels
+ edge normalisation, first order) against the DARTS one (first order); targets PC-DARTS <= 0.30x the
saved-activation memory and <= 0.35x the time of DARTS (arXiv:1907.05737: batch 64 -> 256 in the same
memory). And the per-iteration cost of each P-DARTS stage (5 / 11 / 17 cells over 8 / 5 / 3 candidates).

Saved-activation memory is measured with ``torch.autograd.graph.saved_tensors_hooks``: every tensor that
autograd saves for a backward pass is counted once per storage while it is alive (until its graph is
freed), and the peak over the iteration is reported. Weight-shaped leaf tensors (the parameters and the
virtual / perturbed weight copies of second order and amended) are not activations and are left out.

    python benchmarks/search_iteration.py [--batch-size 64] [--repeats 3] [--threads N] [--device cpu|cuda]
                                          [--no-channels-last] [--cudnn-benchmark] [--autocast bf16]
                                          [--parts modes,passes,pcdarts,pdarts]

``--cudnn-benchmark --autocast bf16`` times what ``trainer=gpu trainer.precision=bf16-mixed`` runs (the GPU
search experiments' setting: cuDNN autotuner on, bf16 autocast around the training step).

``--compile SETTING`` compiles the search network's forward as ``model.compile`` does (e.g.
``cudagraphs`` or ``reduce-overhead`` on a GPU); the saved-activation meter is then skipped (its saved-tensor
hooks do not apply inside compiled graphs) and ``saved_activation_peak_mb`` is null.

``passes`` times the three kinds of forward/backward pass the modes are made of (backward to alpha only,
to the weights only, to both) and predicts each mode's ratio from its pass list: the measured ratio over
that prediction is the overhead beyond the passes the formulas need.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from networks.nas.arch_gradients import build_arch_gradient
from networks.nas.compiled_forward import COMPILE_MODES, check_device, compile_forward, normalize_compile
from networks.nas.search_space import SearchNetwork

MODES = ("first_order", "second_order", "amended")
TARGETS = {"second_order": 2.6, "amended": 3.1}
# The passes of one iteration (architecture step + weight step) per mode, by what each backward reaches.
PASSES = {
    "first_order": {"alpha": 1, "weights": 1},
    "second_order": {"weights": 2, "both": 1, "alpha": 2},
    "amended": {"both": 1, "weights": 3, "alpha": 2},
}
AUTOCAST_DTYPES = {"none": None, "bf16": torch.bfloat16}
PCDARTS_TARGETS = {"time_vs_darts": 0.35, "activation_memory_vs_darts": 0.30}
# P-DARTS stages on CIFAR: cells and candidates per edge (the stage-2/3 candidates are an example survivor set).
PDARTS_STAGES = {
    "stage1": (5, None),
    "stage2": (11, ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"]),
    "stage3": (17, ["none", "skip_connect", "sep_conv_3x3"]),
}


class SavedActivationMeter:
    """Peak bytes of activations held for backward (unique storages, weight-shaped leaves excluded)."""

    def __init__(self, weight_shapes: set[tuple[int, ...]]) -> None:
        self.weight_shapes = weight_shapes
        self.live: dict[int, list[int]] = {}
        self.current = 0
        self.peak = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def _pack(self, tensor: torch.Tensor) -> Any:
        if tensor.is_leaf and tensor.is_floating_point() and tuple(tensor.shape) in self.weight_shapes:
            return tensor
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self.live:
            self.live[key][1] += 1
        else:
            self.live[key] = [storage.nbytes(), 1]
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        holder = _Held(tensor)
        weakref.finalize(holder, self._release, key)
        return holder

    @staticmethod
    def _unpack(packed: Any) -> torch.Tensor:
        return packed.tensor if isinstance(packed, _Held) else packed

    def _release(self, key: int) -> None:
        entry = self.live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def __enter__(self) -> SavedActivationMeter:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


class _Held:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def make_setup(args: argparse.Namespace, mode: str, **network_options: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    device = torch.device(args.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    layers = network_options.pop("layers", args.layers)
    network = SearchNetwork(args.init_channels, 10, layers, **network_options)
    network = network.to(device, memory_format=memory_format).train()
    setting = normalize_compile(getattr(args, "compile", "false"))
    check_device(setting, device)
    compile_forward(network, setting)
    weight_optimizer = torch.optim.SGD(network.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    arch_optimizer = torch.optim.Adam(network.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    generator = torch.Generator().manual_seed(1)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=generator)
        images = images.to(device).contiguous(memory_format=memory_format)
        return images, torch.randint(0, 10, (args.batch_size,), generator=generator).to(device)

    return {"network": network, "weight_optimizer": weight_optimizer, "arch_optimizer": arch_optimizer,
            "strategy": build_arch_gradient(mode, eta=0.1), "batches": [batch(), batch()]}


def iteration(setup: dict[str, Any]) -> None:
    """What ``ArchitectureSearch.training_step`` does: arch step on the arch batch, then weight step."""
    network, strategy = setup["network"], setup["strategy"]
    weight_optimizer, arch_optimizer = setup["weight_optimizer"], setup["arch_optimizer"]
    train_batch, val_batch = setup["batches"]
    result = strategy(network, train_batch, val_batch, weight_optimizer)
    for parameter, gradient in zip(network.arch_parameters(), result.gradients, strict=True):
        parameter.grad = gradient
    arch_optimizer.step()
    arch_optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(network(train_batch[0], detach_arch=True), train_batch[1])
    weights = network.weight_parameters()
    for parameter, gradient in zip(weights, torch.autograd.grad(loss, weights), strict=True):
        parameter.grad = gradient
    torch.nn.utils.clip_grad_norm_(weights, 5.0)
    weight_optimizer.step()
    weight_optimizer.zero_grad(set_to_none=True)


def autocast(args: argparse.Namespace) -> torch.autocast:
    """The ``--autocast`` context (off for ``none``), as Lightning's bf16-mixed precision wraps the step."""
    dtype = AUTOCAST_DTYPES[args.autocast]
    return torch.autocast(torch.device(args.device).type, dtype=dtype, enabled=dtype is not None)


def run_iteration(args: argparse.Namespace, setup: dict[str, Any]) -> None:
    """One :func:`iteration` under :func:`autocast`."""
    with autocast(args):
        iteration(setup)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, work: Callable[..., object], *arguments: Any) -> float:
    """Wall seconds of ``work(*arguments)``, the device's queued kernels included."""
    synchronize(device)
    started = time.perf_counter()
    work(*arguments)
    synchronize(device)
    return time.perf_counter() - started


def add_network_arguments(parser: argparse.ArgumentParser, batch_size: int) -> None:
    """The search network's size, batch and device options shared by the search benchmarks."""
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--init-channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", default="false", choices=tuple(COMPILE_MODES),
                        help="compile the search forward as model.compile does")


def measure(args: argparse.Namespace, variants: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Time and saved-activation peak of one iteration of each variant ``name: (mode, network options)``.

    The variants are timed in turn, one iteration each per round, so that a slow spell of the machine
    (another process, clock changes) lands on all of them alike; ``vs_first`` ratios are the median of the
    per-round ratios to the first variant (each round's ratio is reported too: their spread is the noise).
    """
    setups = {name: make_setup(args, mode, **dict(options)) for name, (mode, options) in variants.items()}
    for setup in setups.values():
        for _ in range(args.warmup):  # also fills the momentum buffers used by second order
            run_iteration(args, setup)
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.repeats):
        for name, setup in setups.items():
            times[name].append(timed(args.device, run_iteration, args, setup))
    first = next(iter(setups))
    results = {}
    for name, setup in setups.items():
        shapes = {tuple(p.shape) for p in setup["network"].parameters()}
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        peak_mb = None
        if getattr(args, "compile", "false") == "false":
            with SavedActivationMeter(shapes) as meter:
                run_iteration(args, setup)
            peak_mb = round(meter.peak / 2**20, 1)
        else:
            run_iteration(args, setup)
        ratios = [own / base for own, base in zip(times[name], times[first], strict=True)]
        results[name] = {"seconds_per_iteration": round(statistics.median(times[name]), 4),
                         "seconds_all": [round(t, 4) for t in times[name]],
                         "time_vs_first": round(statistics.median(ratios), 3),
                         "time_vs_first_per_round": [round(ratio, 3) for ratio in ratios],
                         "saved_activation_peak_mb": peak_mb}
        if args.device.startswith("cuda"):
            results[name]["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        del setup["batches"]
    for result in results.values():
        peak, first_peak = result["saved_activation_peak_mb"], results[first]["saved_activation_peak_mb"]
        result["activation_memory_vs_first"] = round(peak / first_peak, 3) if peak is not None else None
    return results


def measure_passes(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds of one forward + backward on the train batch, by what the backward reaches, and each mode's
    time ratio to first order predicted from its :data:`PASSES`."""
    setup = make_setup(args, "first_order")
    network = setup["network"]
    images, targets = setup["batches"][0]
    reach = {"alpha": (network.arch_parameters(), False), "weights": (network.weight_parameters(), True),
             "both": ([*network.arch_parameters(), *network.weight_parameters()], False)}

    def one_pass(kind: str) -> None:
        inputs, detach_arch = reach[kind]
        with autocast(args):
            loss = F.cross_entropy(network(images, detach_arch=detach_arch), targets)
        torch.autograd.grad(loss, inputs)

    for _ in range(args.warmup):
        for kind in reach:
            one_pass(kind)
    times: dict[str, list[float]] = {kind: [] for kind in reach}
    for _ in range(args.repeats):  # interleaved, like the iterations
        for kind in reach:
            times[kind].append(timed(args.device, one_pass, kind))
    seconds = {kind: statistics.median(values) for kind, values in times.items()}
    cost = {mode: sum(count * seconds[kind] for kind, count in passes.items()) for mode, passes in PASSES.items()}
    return {"seconds_per_pass": {kind: round(value, 4) for kind, value in seconds.items()},
            "predicted_time_vs_first_order": {mode: round(cost[mode] / cost["first_order"], 3) for mode in cost}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_arguments(parser, batch_size=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="channels-last weights and images, as model.channels_last (default) sets")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="cuDNN autotuner on (trainer=gpu sets it)")
    parser.add_argument("--autocast", choices=tuple(AUTOCAST_DTYPES), default="none",
                        help="autocast dtype around each iteration (bf16: trainer.precision=bf16-mixed)")
    parser.add_argument("--parts", default="modes,passes,pcdarts,pdarts",
                        help="comma-separated: modes (gradient modes), passes (pass-cost model), pcdarts (vs DARTS), "
                             "pdarts (per stage)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    parts = set(args.parts.split(","))
    report: dict[str, Any] = {
        "benchmark": "darts_search_iteration",
        "setting": {"init_channels": args.init_channels, "layers": args.layers, "image_size": args.image_size,
                    "batch_size": args.batch_size, "repeats": args.repeats, "warmup": args.warmup,
                    "channels_last": args.channels_last, "cudnn_benchmark": args.cudnn_benchmark,
                    "autocast": args.autocast, "compile": args.compile, "timing": "variants interleaved, one iteration per round"},
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    variants: dict[str, tuple[str, dict[str, Any]]] = {"first_order": ("first_order", {})}
    if "modes" in parts:
        variants.update({mode: (mode, {}) for mode in MODES})
    if "pcdarts" in parts:
        variants["pcdarts_k4"] = ("first_order", {"partial_channel_k": 4, "edge_normalization": True})
    measured = measure(args, variants)
    if "modes" in parts:
        modes = report["modes"] = {}
        for mode in MODES:
            result = dict(measured[mode])
            ratios = {"time_vs_first_order": result.pop("time_vs_first"),
                      "time_vs_first_order_per_round": result.pop("time_vs_first_per_round"),
                      "activation_memory_vs_first_order": result.pop("activation_memory_vs_first")}
            modes[mode] = {**result, **ratios}
            if mode in TARGETS:
                modes[mode]["target_time_vs_first_order"] = TARGETS[mode]
                modes[mode]["meets_target"] = modes[mode]["time_vs_first_order"] <= TARGETS[mode]
    if "passes" in parts:
        report["pass_cost_model"] = passes = measure_passes(args)
        for mode, result in report.get("modes", {}).items():
            predicted = passes["predicted_time_vs_first_order"][mode]
            result["overhead_vs_pass_model"] = round(result["time_vs_first_order"] / predicted, 3)
    if "pcdarts" in parts:
        darts, pc = measured["first_order"], measured["pcdarts_k4"]
        ratios = {"time_vs_darts": pc["time_vs_first"], "activation_memory_vs_darts": pc["activation_memory_vs_first"]}
        report["pcdarts_vs_darts"] = {
            "darts_first_order": {key: darts[key] for key in ("seconds_per_iteration", "saved_activation_peak_mb")},
            "pcdarts_k4_first_order": {key: value for key, value in pc.items() if "vs_first" not in key},
            **ratios, "time_vs_darts_per_round": pc["time_vs_first_per_round"], "targets": PCDARTS_TARGETS,
            "meets_targets": all(ratios[key] <= PCDARTS_TARGETS[key] for key in PCDARTS_TARGETS
                                 if ratios[key] is not None),
        }
    if "pdarts" in parts:
        stages = measure(args, {name: ("first_order", {"layers": layers, "candidate_ops": candidates})
                                for name, (layers, candidates) in PDARTS_STAGES.items()})
        report["pdarts_stages_first_order"] = {
            name: {"cells": layers, "candidates_per_edge": len(candidates or range(8)),
                   **{key: value for key, value in stages[name].items() if "vs_first" not in key}}
            for name, (layers, candidates) in PDARTS_STAGES.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
