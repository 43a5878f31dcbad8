"""MCNL training step vs the batch-hard triplet step at the same batch: what the loss and the sampler cost.

For each loss, times (1) a full training step (forward, loss, backward, Adam) on random images, (2) the loss
alone (forward + backward on the batch's features) and (3) drawing one batch from its sampler (camera-aware
for MCNL, P x K for triplet) over Market-SCT-sized labels (751 identities, 6 cameras, ~4.7 images each).
Target: the loss costs at most 5% of a step. Prints one JSON object.

    python benchmarks/mcnl_step.py [--network reduced|resnet50] [--batch-size 32] [--images-per-identity 4]
                                   [--height 64] [--width 32] [--steps 5] [--device cpu|cuda]

The paper's setting is ``--network resnet50 --batch-size 240 --images-per-identity 8 --height 256
--width 128`` (Market: 5 identities x 6 cameras x 8 images); on a CPU use the defaults.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch

from datamodules.reid.samplers import CameraAwareBatchSampler, IdentityBatchSampler
from networks.reid.embedding import ReIDEmbedding, reduced_resnet_trunk, resnet50_trunk
from networks.reid.losses import BatchHardTripletLoss, MCNLLoss


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_time(function: Callable[[], object], steps: int, device: str, warmup: int = 1) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(steps):
        synchronize(device)
        started = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def market_sct_labels(seed: int = 0) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    identities, cameras = [], []
    for identity in range(751):
        camera, count = int(rng.integers(6)), int(rng.integers(2, 8))
        identities += [identity] * count
        cameras += [camera] * count
    return identities, cameras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=("reduced", "resnet50"), default="reduced")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--images-per-identity", type=int, default=4)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    trunk = reduced_resnet_trunk() if args.network == "reduced" else resnet50_trunk(last_stride=1)
    net = ReIDEmbedding(trunk).to(args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, weight_decay=5e-4)
    identities, cameras = market_sct_labels()
    samplers = {
        "mcnl": CameraAwareBatchSampler(identities, cameras, args.batch_size, args.images_per_identity, world_size=1,
                                        rank=0),
        "triplet": IdentityBatchSampler(identities, args.batch_size, args.images_per_identity, world_size=1, rank=0),
    }
    losses = {"mcnl": MCNLLoss(0.1, 0.1), "triplet": BatchHardTripletLoss(0.3)}
    images = torch.randn(args.batch_size, 3, args.height, args.width, device=args.device)
    report: dict[str, object] = {"benchmark": "mcnl_step", "network": args.network, "batch_size": args.batch_size,
                                 "input": f"{args.height}x{args.width}", "device": args.device,
                                 "torch_threads": torch.get_num_threads()}
    for name, loss_function in losses.items():
        batch = next(iter(samplers[name]))
        labels = torch.tensor([identities[index] for index in batch], device=args.device)
        batch_cameras = torch.tensor([cameras[index] for index in batch], device=args.device)

        def step(loss_function=loss_function, labels=labels, batch_cameras=batch_cameras) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_function(net(images), labels, batch_cameras).backward()
            optimizer.step()

        features = torch.randn(args.batch_size, net.feature_dim, device=args.device, requires_grad=True)

        def loss_only(loss_function=loss_function, labels=labels, batch_cameras=batch_cameras,
                      features=features) -> None:
            loss_function(features, labels, batch_cameras).backward()

        sampler = samplers[name]
        epoch_seconds = best_time(lambda sampler=sampler: sampler.epoch_batches(0), 3, "cpu")
        step_seconds = best_time(step, args.steps, args.device)
        loss_seconds = best_time(loss_only, max(args.steps, 20), args.device)
        sampler_seconds = epoch_seconds / max(len(sampler), 1)
        report[name] = {"step_seconds": round(step_seconds, 5), "loss_seconds": round(loss_seconds, 6),
                        "loss_fraction_of_step": round(loss_seconds / step_seconds, 4),
                        "sampler_seconds_per_batch": round(sampler_seconds, 6),
                        "sampler_fraction_of_step": round(sampler_seconds / step_seconds, 4)}
    report["mcnl_step_over_triplet_step"] = round(report["mcnl"]["step_seconds"] / report["triplet"]["step_seconds"], 3)
    report["target_met"] = bool(report["mcnl"]["loss_fraction_of_step"] <= 0.05)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
