"""Where one search iteration's time goes: the top kernels of DARTS and PC-DARTS per memory format / precision.

Times one first-order iteration (architecture step + weight step, as ``benchmarks/search_iteration.py``) of
the DARTS and the PC-DARTS (K=4, edge normalisation) search networks under four settings (NCHW fp32, NCHW
bf16 autocast, channels-last bf16, channels-last fp32; cuDNN autotuner on except for the first), and for the
first and third lists the kernels (GPU) or operators (CPU) that took most time, from ``torch.profiler``.
Wall time far above the kernel total means the iteration is bound by the host (Python and dispatch).

    python benchmarks/search_kernels.py [--batch-size 256] [--top 18] [--output kernels.json]
                                        [--init-channels 16] [--layers 8] [--image-size 32]
                                        [--settings cl_fp32_cudnn,cl_bf16_cudnn] [--profile-all]

``--settings`` keeps some of the four settings; ``--profile-all`` lists the kernels of every kept setting
(benchmarks/search_graph_gpu.sh compares an iteration's wall time with the kernel total of the setting it runs in).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import torch
from search_iteration import add_network_arguments, make_setup, run_iteration, synchronize, timed
from torch.profiler import ProfilerActivity, profile

NETWORKS = {"darts": {}, "pcdarts_k4": {"partial_channel_k": 4, "edge_normalization": True}}
# name: (channels_last, autocast, cudnn_benchmark, profiled)
SETTINGS = {
    "fp32": (False, "none", False, True),
    "bf16_cudnn": (False, "bf16", True, False),
    "cl_bf16_cudnn": (True, "bf16", True, True),
    "cl_fp32_cudnn": (True, "none", True, False),
}


def top_kernels(args: argparse.Namespace, setup: dict[str, Any]) -> dict[str, Any]:
    """Kernel (GPU) or operator self time (CPU) of one profiled iteration, largest first."""
    cuda = args.device.startswith("cuda")
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as profiler:
        run_iteration(args, setup)
        synchronize(args.device)
    attribute = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = sorted(profiler.key_averages(), key=lambda event: -getattr(event, attribute))
    return {"kernel_ms_total": round(sum(getattr(event, attribute) for event in events) / 1e3, 1),
            "top": [[event.key[:110], event.count, round(getattr(event, attribute) / 1e3, 1)]
                    for event in events[:args.top]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_network_arguments(parser, batch_size=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=18)
    parser.add_argument("--output", help="also write the JSON here, updated after each measurement")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of the settings")
    parser.add_argument("--profile-all", action="store_true", help="list the kernels of every kept setting")
    args = parser.parse_args()
    kept = args.settings.split(",")
    unknown = sorted(set(kept) - set(SETTINGS))
    if unknown:
        parser.error(f"--settings: unknown {unknown}; choose from {', '.join(SETTINGS)}")
    report: dict[str, Any] = {
        "benchmark": "darts_search_kernels", "batch_size": args.batch_size, "init_channels": args.init_channels,
        "layers": args.layers, "image_size": args.image_size, "torch": torch.__version__, "compile": args.compile,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device}
    for setting, (channels_last, autocast, cudnn_benchmark, profiled) in SETTINGS.items():
        if setting not in kept:
            continue
        profiled = profiled or args.profile_all
        torch.backends.cudnn.benchmark = cudnn_benchmark
        args.channels_last, args.autocast = channels_last, autocast
        for network, options in NETWORKS.items():
            setup = make_setup(args, "first_order", **options)
            for _ in range(2):  # warm-up: allocator, cuDNN autotuner, momentum buffers
                run_iteration(args, setup)
            seconds = [round(timed(args.device, run_iteration, args, setup), 4) for _ in range(args.repeats)]
            entry: dict[str, Any] = {"seconds": seconds, "median_seconds": statistics.median(seconds)}
            if profiled:
                entry.update(top_kernels(args, setup))
            report[f"{setting}/{network}"] = entry
            if args.output:  # after each entry: a run cut short by a time limit keeps what it measured
                with open(args.output, "w") as handle:
                    json.dump(report, handle, indent=1)
            del setup
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
