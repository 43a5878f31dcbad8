"""Whole-volume inference time and peak memory: thickened 2D vs plain 2D vs 3D U-Net on the same volume.

The claim of Yu et al. (arXiv:1904.01150): a thickened 2D network keeps the efficiency of 2D networks while
seeing 3D context; a 3D network costs far more. Each network segments the same random volume (``--size X Y Z``,
CT-sized by default: 512 x 512 x 100; use smaller on a CPU) with the suite's inference
(``networks.segmentation.inference``: 2D slice by slice in batches, 3D by sliding windows with 50% overlap).
Peak memory is CUDA's ``max_memory_allocated`` on a GPU; on a CPU each network runs in a fresh process and the
growth of its peak resident set during inference is reported. Prints one JSON object with the times (wall and
process CPU, the latter less sensitive to other processes on a shared CPU), memory and ratios to the thickened
network.

    python benchmarks/volume_inference.py [--size 512 512 100] [--device cuda] [--repeats 3]
        [--channels 32 64 128 256] [--channels-3d 16 32 64 128] [--context-slices 2] [--fusion-depth 2]
        [--highway-channels 4] [--batch-size 16] [--patch-size 128 128 32] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time

import torch

from networks.segmentation import UNet3D, plain_unet2d, thickened_unet2d
from networks.segmentation.inference import volume_probabilities

CLASSES = 3
NETWORKS = ("thickened2d", "plain2d", "unet3d")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=[512, 512, 100])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--channels-3d", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--context-slices", type=int, default=2)
    parser.add_argument("--fusion-depth", type=int, default=2)
    parser.add_argument("--highway-channels", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16, help="slices per forward pass (windows: 1/8)")
    parser.add_argument("--patch-size", type=int, nargs=3, default=[128, 128, 32])
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    return parser.parse_args()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(name: str, args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "thickened2d":
        return thickened_unet2d(CLASSES, args.context_slices, args.channels, args.fusion_depth, args.highway_channels)
    if name == "plain2d":
        return plain_unet2d(CLASSES, args.context_slices, args.channels)
    return UNet3D(CLASSES, args.channels_3d)


def measure(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Time and peak memory of one network (run in its own process on a CPU, so peak RSS is its own)."""
    torch.manual_seed(0)
    volume = torch.rand(*args.size, device=args.device)
    net = build(name, args).to(args.device).eval()
    cuda = args.device.startswith("cuda")
    autocast = torch.autocast(device_type="cuda" if cuda else "cpu", dtype=torch.bfloat16,
                              enabled=args.precision == "bf16")
    times, cpu_times = [], []
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    rss_before = peak_rss_mb()
    for _ in range(args.repeats + 1):  # the first pass warms up (cuDNN heuristics, allocator)
        started, cpu_started = time.perf_counter(), time.process_time()
        with autocast:
            probabilities = volume_probabilities(net, volume, [2], args.batch_size, args.patch_size, 0.5)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    assert probabilities.shape[1:] == volume.shape
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb() - rss_before
    parameters = sum(p.numel() for p in net.parameters())
    return {"seconds_per_volume": round(min(times[1:]), 4), "cpu_seconds_per_volume": round(min(cpu_times[1:]), 4), "peak_memory_mb": round(memory, 1),
            "params_m": round(parameters / 1e6, 4), "network": name}


def main() -> None:
    args = parse_args()
    if args.device.startswith("cuda"):
        results = {name: measure(name, args) for name in NETWORKS}
    else:
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            results = {name: pool.apply(measure, (name, args)) for name in NETWORKS}
    base = results["thickened2d"]
    report = {
        "volume_size": args.size, "device": args.device, "precision": args.precision,
        "context_slices": args.context_slices, "fusion_depth": args.fusion_depth, "patch_size_3d": args.patch_size,
        "networks": results,
        "time_vs_thickened2d": {n: round(r["seconds_per_volume"] / base["seconds_per_volume"], 3)
                                for n, r in results.items()},
        "cpu_time_vs_thickened2d": {n: round(r["cpu_seconds_per_volume"] / base["cpu_seconds_per_volume"], 3)
                                    for n, r in results.items()},
        "memory_vs_thickened2d": {n: round(r["peak_memory_mb"] / base["peak_memory_mb"], 3)
                                  if base["peak_memory_mb"] > 0 else None for n, r in results.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
