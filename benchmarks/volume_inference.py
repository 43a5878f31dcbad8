"""Whole-volume inference time and peak memory: thickened 2D vs plain 2D vs the MONAI 3D baselines on one volume.

The claim of Yu et al. (arXiv:1904.01150): a thickened 2D network keeps the efficiency of 2D networks while
seeing 3D context; a 3D network costs far more. Each network segments the same random volume (``--size X Y Z``,
CT-sized by default: 512 x 512 x 100; use smaller on a CPU) with the suite's inference
(``networks.segmentation.inference``: 2D slice by slice in batches; 3D by MONAI's sliding windows with 50% overlap:
MONAI's ``UNet`` on ``--patch-size`` windows with constant blending, ``DynUNet`` planned by nnU-Net's rules for
``--dynunet-patch-size`` at ``--dynunet-spacing`` (MSD Task08's plan by default) on windows of that patch with
Gaussian blending, as the configs set them). Peak memory is CUDA's ``max_memory_allocated`` on a GPU; on a CPU each
network runs in a fresh process and the growth of its peak resident set during inference is reported. Prints one
JSON object with the times (wall and process CPU, the latter less sensitive to other processes on a shared CPU),
memory, parameters and ratios to the thickened network; with ``--demo-runs``, the test Dice of the demo runs found
there (their ``result.json``) too.

    python benchmarks/volume_inference.py [--size 512 512 100] [--device cuda] [--repeats 3]
        [--channels 32 64 128 256] [--channels-3d 32 64 128 256] [--context-slices 2] [--fusion-depth 2]
        [--highway-channels 4] [--batch-size 16] [--patch-size 128 128 32] [--dynunet-patch-size 192 192 64]
        [--dynunet-spacing 0.8 0.8 1.5] [--dynunet-channels 32 64 128 256 320] [--precision fp32|bf16]
        [--networks thickened2d plain2d unet3d dynunet3d] [--demo-runs logs]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from pathlib import Path

import torch

from networks.segmentation import DynUNet3D, UNet3D, plain_unet2d, thickened_unet2d
from networks.segmentation.inference import volume_probabilities

CLASSES = 3
NETWORKS = ("thickened2d", "plain2d", "unet3d", "dynunet3d")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=[512, 512, 100])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--channels-3d", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--context-slices", type=int, default=2)
    parser.add_argument("--fusion-depth", type=int, default=2)
    parser.add_argument("--highway-channels", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16, help="slices per forward pass (windows: 1/8)")
    parser.add_argument("--patch-size", type=int, nargs=3, default=[128, 128, 32], help="UNet windows")
    parser.add_argument("--dynunet-patch-size", type=int, nargs=3, default=[192, 192, 64])
    parser.add_argument("--dynunet-spacing", type=float, nargs=3, default=[0.8, 0.8, 1.5])
    parser.add_argument("--dynunet-channels", type=int, nargs="+", default=[32, 64, 128, 256, 320])
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--demo-runs", type=Path, help="a folder holding demo runs: their test Dice is reported")
    return parser.parse_args()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(name: str, args: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "thickened2d":
        return thickened_unet2d(CLASSES, args.context_slices, args.channels, args.fusion_depth, args.highway_channels)
    if name == "plain2d":
        return plain_unet2d(CLASSES, args.context_slices, args.channels)
    if name == "unet3d":
        return UNet3D(CLASSES, args.channels_3d)
    return DynUNet3D(CLASSES, args.dynunet_patch_size, args.dynunet_spacing, args.dynunet_channels)


def windows(name: str, args: argparse.Namespace) -> tuple[list[int], str]:
    """The sliding-window size and blending of a 3D network, as its config sets them."""
    return (args.dynunet_patch_size, "gaussian") if name == "dynunet3d" else (args.patch_size, "constant")


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
    patch_size, mode = windows(name, args)
    rss_before = peak_rss_mb()
    for _ in range(args.repeats + 1):  # the first pass warms up (cuDNN heuristics, allocator)
        started, cpu_started = time.perf_counter(), time.process_time()
        with autocast:
            probabilities = volume_probabilities(net, volume, [2], args.batch_size, patch_size, 0.5, mode)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    assert probabilities.shape[1:] == volume.shape
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mb() - rss_before
    parameters = sum(p.numel() for p in net.parameters())
    return {"seconds_per_volume": round(min(times[1:]), 4), "cpu_seconds_per_volume": round(min(cpu_times[1:]), 4), "peak_memory_mb": round(memory, 1),
            "params_m": round(parameters / 1e6, 4), "network": name}


def demo_dice(folder: Path) -> dict[str, dict[str, float]]:
    """``{experiment: {test/dice_*: value}}`` of the newest run of each experiment under ``folder``."""
    found: dict[str, dict[str, float]] = {}
    for result in sorted(folder.rglob("result.json"), key=lambda path: path.stat().st_mtime):
        metrics = json.loads(result.read_text()).get("metrics", {})
        dice = {key: round(float(value), 4) for key, value in metrics.items()
                if key.startswith("test/dice_") and "/dice/" not in key}
        if dice:
            found[result.parents[2].name] = dice  # <experiment>/runs/<run>/result.json
    return found


def main() -> None:
    args = parse_args()
    names = [name for name in NETWORKS if name in args.networks]
    if args.device.startswith("cuda"):
        results = {name: measure(name, args) for name in names}
    else:
        with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
            results = {name: pool.apply(measure, (name, args)) for name in names}
    base = results.get("thickened2d") or next(iter(results.values()))
    report = {
        "volume_size": args.size, "device": args.device, "precision": args.precision,
        "context_slices": args.context_slices, "fusion_depth": args.fusion_depth, "patch_size_3d": args.patch_size,
        "dynunet_patch_size": args.dynunet_patch_size, "dynunet_spacing": args.dynunet_spacing,
        "networks": results,
        "time_vs_thickened2d": {n: round(r["seconds_per_volume"] / base["seconds_per_volume"], 3)
                                for n, r in results.items()},
        "cpu_time_vs_thickened2d": {n: round(r["cpu_seconds_per_volume"] / base["cpu_seconds_per_volume"], 3)
                                    for n, r in results.items()},
        "memory_vs_thickened2d": {n: round(r["peak_memory_mb"] / base["peak_memory_mb"], 3)
                                  if base["peak_memory_mb"] > 0 else None for n, r in results.items()},
    }
    if args.demo_runs is not None:
        report["demo_test_dice"] = demo_dice(args.demo_runs)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
