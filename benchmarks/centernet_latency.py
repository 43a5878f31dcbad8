"""Inference latency of CenterNet-52 and CenterNet-104 at 511x511, batch 1, single scale, with/without flip.

The paper reports 270 ms / 340 ms per image on a P100 for 52 / 104, with flip. For each model and
flip setting: the network alone (one image, or the image and its mirror) and the full detection (network +
decoding: NMS, top-K, pairing, center check, soft-NMS). Random weights: the heatmaps of an untrained model
are flat, which makes decoding its slowest (many candidates survive), so the totals are upper bounds.
Runs on the GPU when one is available (``--device cpu`` to force the CPU). Times are the best of
``--repeats`` runs (the least disturbed on a shared machine). Prints one JSON object.

    python benchmarks/centernet_latency.py [--models centernet52 centernet104] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

from networks.detection.centernet import centernet52, centernet104
from networks.detection.decoding import CenterNetDecoder, DecoderSettings

MODELS: dict[str, Callable[..., torch.nn.Module]] = {"centernet52": centernet52, "centernet104": centernet104}


def best_seconds(function: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(
    net: torch.nn.Module, image: torch.Tensor, repeats: int, warmup: int, device: torch.device
) -> dict[str, float]:
    """Network-only and full-detection milliseconds, without and with flip."""
    entry = {}
    for flip in (False, True):
        decoder = CenterNetDecoder(DecoderSettings(flip=flip))
        batch = torch.cat([image, image.flip(3)]) if flip else image

        def network_only(batch: torch.Tensor = batch) -> object:
            with torch.inference_mode():
                return net(batch)

        def detection(decoder: CenterNetDecoder = decoder) -> object:
            with torch.inference_mode():
                return decoder(lambda x: net(x)[-1], image)

        key = "flip" if flip else "no_flip"
        entry[f"network_ms_{key}"] = round(1000 * best_seconds(network_only, repeats, warmup, device), 1)
        entry[f"total_ms_{key}"] = round(1000 * best_seconds(detection, repeats, warmup, device), 1)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--size", type=int, default=511)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    image = torch.randn(1, 3, args.size, args.size, device=device)

    results = {}
    for name in args.models:
        net = MODELS[name](80).to(device).eval()
        results[name] = {
            "params_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
            **measure(net, image, args.repeats, args.warmup, device),
        }
        del net
    report = {
        "benchmark": "CenterNet inference latency, batch 1, single scale",
        "input": [1, 3, args.size, args.size],
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "repeats": args.repeats,
        "paper_p100_ms_with_flip": {"centernet52": 270, "centernet104": 340},
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
