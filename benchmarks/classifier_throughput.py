"""Training throughput (images/s) of a zoo backbone: ``ImageClassifier`` under Lightning vs a plain PyTorch loop.

The method of ``train_throughput.py`` (same synthetic batches, warm-up steps, the two paths interleaved twice, best
of each) on the classification layer: by default the CIFAR ResNet-56 with SGD 0.1 / momentum 0.9 / wd 1e-4
(classify_cifar10). Target: the Lightning path within 5% of the plain loop. Prints one JSON object.

    python benchmarks/classifier_throughput.py [--backbone resnet56] [--width-multiplier 1.0] [--steps 30]
                                               [--batch-size 128] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from train_throughput import report, timed_plain_loop, trainer_images_per_s

from lightning_modules.classification import ImageClassifier
from networks.classification import build_backbone

SGD = partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-4)


def make_module(args: argparse.Namespace) -> ImageClassifier:
    torch.manual_seed(0)
    net = build_backbone(args.backbone, 10, width_multiplier=args.width_multiplier)
    return ImageClassifier(net, num_classes=10, optimizer=SGD)


def make_loader(args: argparse.Namespace, batches: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batches * args.batch_size, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (batches * args.batch_size,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=args.batch_size, shuffle=False)


def plain_loop(args: argparse.Namespace) -> float:
    """Images/s of a hand-written loop doing the optimisation of ``ImageClassifier.training_step``."""
    net = make_module(args).net.to(args.device)
    net.train()
    optimizer = SGD(net.parameters())

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()

    return timed_plain_loop(args, make_loader(args, args.warmup + args.steps), step)


def lightning_loop(args: argparse.Namespace) -> float:
    """Images/s of ``ImageClassifier`` driven by ``pl.Trainer`` (no logger, checkpointing or progress bar)."""
    return trainer_images_per_s(make_module(args), make_loader(args, args.warmup + args.steps), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet56")
    parser.add_argument("--width-multiplier", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both paths in 32-bit precision)")
    args = parser.parse_args()
    report("classifier_throughput", f"{args.backbone} (width {args.width_multiplier})", args, plain_loop, lightning_loop)

if __name__ == "__main__":
    main()
