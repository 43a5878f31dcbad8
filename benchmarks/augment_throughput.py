"""Data-loading throughput of the CIFAR training pipeline with heavy augmentation: ours vs torchvision's CIFAR10.

Both sides read the same CIFAR-10-format pickles (written by ``datamodules/writers/cifar.py``) and apply the very
same transform objects (AutoAugment + Cutout from ``data.augment``, plus CutMix in the collate with ``--cutmix``):
ours is ``CIFARDataModule.train_dataloader()`` (file checks, epoch-seeded sampler and loader), the reference is
``torchvision.datasets.CIFAR10`` in a plain ``DataLoader(shuffle=True)``. Target: ours within 5% of the
reference. The two are interleaved ``--repeats`` times and the best of each is kept. Prints one JSON object.

    python benchmarks/augment_throughput.py [--images 2000] [--batch-size 128] [--workers 2] [--cutmix]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import CIFAR10

from datamodules.cifar import CIFARDataModule
from datamodules.writers.cifar import write_cifar10


class TorchvisionCIFAR10(CIFAR10):
    """torchvision's CIFAR10 unchanged except for the md5 sums, which the written files cannot match (None:
    torchvision then only checks that the files exist)."""

    train_list = [[name, None] for name, _md5 in CIFAR10.train_list]
    test_list = [[name, None] for name, _md5 in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


def images_per_second(loader: DataLoader, batches: int) -> float:
    """Images/s of the first ``batches`` batches of ``loader`` (worker start-up included, as in training)."""
    count = 0
    started = time.perf_counter()
    for index, (images, _targets) in enumerate(loader):
        count += len(images)
        if index + 1 == batches:
            break
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="training images written in CIFAR format")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=0, help="batches timed per run (0: one epoch)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cutmix", action="store_true", help="add batch-level CutMix (alpha 1)")
    args = parser.parse_args()
    policy = "heavy_cutmix" if args.cutmix else "autoaugment_cutout"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_cifar10(root, num_train=args.images, num_test=10)
        datamodule = CIFARDataModule("cifar10", root, batch_size=args.batch_size, num_workers=args.workers,
                                     augment=policy)
        datamodule.setup("fit")
        ours = datamodule.train_dataloader()
        transform = datamodule.train_dataset.transform  # the same objects for the reference
        reference = DataLoader(
            TorchvisionCIFAR10(str(root), train=True, transform=transform), batch_size=args.batch_size,
            shuffle=True, num_workers=args.workers, collate_fn=datamodule.augmentation.collate(10),
        )
        batches = args.batches or len(reference)
        ours_runs, reference_runs = [], []
        for _ in range(args.repeats):
            reference_runs.append(images_per_second(reference, batches))
            ours_runs.append(images_per_second(ours, batches))
    best_ours, best_reference = max(ours_runs), max(reference_runs)
    print(json.dumps({
        "benchmark": "augment_throughput",
        "policy": policy,
        "ops": list(datamodule.augmentation.ops),
        "images": args.images,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "threads": torch.get_num_threads(),
        "ours_images_per_s": round(best_ours, 1),
        "torchvision_images_per_s": round(best_reference, 1),
        "ours_over_torchvision": round(best_ours / best_reference, 4),
        "target": ">= 0.95",
    }))


if __name__ == "__main__":
    main()
