"""Logit-dataset generation throughput (images/s) under PGD-10: the attack phase's work vs torchattacks alone.

Same model, batch and attack (PGD, eps 16/255, step 2/255, 10 iterations, random start; arXiv:1906.10973):

* ``torchattacks``: ``attack(images, labels)`` per batch, nothing else;
* ``logit_dataset``: what the attack phase does per shard in Lightning's predict loop:
  :meth:`~lightning_modules.logit_defense.LogitAttackModule.predict_step` (the seeded attack, the clean and
  adversarial logits) and the atomic shard write of :class:`~callbacks.logit_defense.LogitDatasetRecorder`.

Rounds alternate the two paths; the overhead is the median over rounds of (time recorded / time alone - 1).
Target: at most 5 %. Prints one JSON object.

    python benchmarks/logit_dataset_throughput.py [--backbone resnet20] [--image-size 32] [--batch-size 128]
                                                  [--batches 4] [--rounds 5] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch

from datamodules.writers.logit_dataset import LogitDatasetWriter
from lightning_modules.logit_defense import LogitAttackModule
from networks.classification import build_backbone
from networks.defense.attacks import build_attack, seeded, shard_seed
from networks.defense.classifier import DefendedClassifier
from networks.defense.normalized import NormalizedClassifier

PGD10 = {"name": "pgd", "eps": 16 / 255, "alpha": 2 / 255, "steps": 10, "random_start": True}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet20")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=4, help="batches (shards) per round and path")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="PGD iterations (10 in the paper)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    pgd = {**PGD10, "steps": args.steps}
    classifier = DefendedClassifier(build_backbone(args.backbone, args.num_classes), identity={}).to(device)
    model = NormalizedClassifier(classifier, [0.5] * 3, [0.25] * 3).to(device).eval()
    attack = build_attack(pgd, model, device=device)
    module = LogitAttackModule(classifier, {"pgd": pgd}, seed=0).to(device)
    module.attacked, module.attacks = model, {"pgd": attack}  # what its setup / on_predict_start build
    images = torch.rand(args.batches, args.batch_size, 3, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, args.num_classes, (args.batches, args.batch_size), device=device)

    with tempfile.TemporaryDirectory() as scratch:
        def alone() -> None:
            for batch in range(args.batches):
                with seeded(shard_seed(0, "train", batch), device):
                    attack(images[batch], labels[batch])

        def recorded(round_index: int) -> None:
            writer = LogitDatasetWriter(f"{scratch}/{round_index}", args.num_classes, {"pgd": pgd},
                                        {"train": args.batches * args.batch_size}, args.batch_size).open()
            with torch.inference_mode():  # as in the predict loop
                for batch in range(args.batches):
                    rows = writer.shard_indices("train", batch)
                    shard = module.predict_step({"split": "train", "shard": batch, "image": images[batch],
                                                 "label": labels[batch], "index": torch.as_tensor(rows)}, batch)
                    writer.write_shard("train", batch, shard["index"].numpy(), shard["label"].cpu().numpy(),
                                       shard["clean"].cpu().numpy(), shard["adv"].cpu().numpy())

        def timed(function, *arguments) -> float:
            synchronize(device)
            started = time.perf_counter()
            function(*arguments)
            synchronize(device)
            return time.perf_counter() - started

        alone()  # warm-up (allocator, kernels, cuDNN)
        recorded(-1)
        times_alone, times_recorded = [], []
        for round_index in range(args.rounds):
            times_alone.append(timed(alone))
            times_recorded.append(timed(recorded, round_index))

    images_per_round = args.batches * args.batch_size
    ratios = [recorded_time / alone_time - 1 for alone_time, recorded_time in zip(times_alone, times_recorded, strict=True)]
    overhead = statistics.median(ratios)
    print(json.dumps({
        "benchmark": "logit_dataset_throughput",
        "device": str(device),
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "pgd_steps": args.steps,
        "torchattacks_images_per_s": round(images_per_round / statistics.median(times_alone), 2),
        "logit_dataset_images_per_s": round(images_per_round / statistics.median(times_recorded), 2),
        "overhead_percent": round(100 * overhead, 2),
        "overhead_percent_per_round": [round(100 * ratio, 2) for ratio in ratios],
        "target_percent": 5.0,
        "within_target": overhead <= 0.05,
    }))


if __name__ == "__main__":
    main()
