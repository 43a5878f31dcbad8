"""Training throughput (images/s) of the same network and batch: our Lightning module vs a plain loop.

Target: the Lightning path within 5% of the plain PyTorch loop. Prints one JSON object.

    python benchmarks/train_throughput.py [--steps 30] [--batch-size 64] [--init-channels 16] [--layers 8]
                                          [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial

import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.nas import GenotypeClassifier
from networks.nas.networks import NetworkCIFAR


def make_module(args: argparse.Namespace) -> GenotypeClassifier:
    torch.manual_seed(0)
    net = NetworkCIFAR(init_channels=args.init_channels, num_classes=10, layers=args.layers, auxiliary=True,
                       genotype=args.genotype)
    return GenotypeClassifier(net, num_classes=10, auxiliary_weight=0.4, drop_path_prob=0.2,
                              optimizer=partial(torch.optim.SGD, lr=0.025, momentum=0.9, weight_decay=3e-4))


def make_loader(args: argparse.Namespace, batches: int) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batches * args.batch_size, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (batches * args.batch_size,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=args.batch_size, shuffle=False)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed_plain_loop(args: argparse.Namespace, loader: DataLoader, step: Callable[[torch.Tensor, torch.Tensor], None]
                     ) -> float:
    """Images/s of ``step(images, labels)`` (one optimisation step) over ``loader``, after ``args.warmup`` steps."""
    started = 0.0
    for index, (images, labels) in enumerate(loader):
        if index == args.warmup:
            synchronize(args.device)
            started = time.perf_counter()
        step(images.to(args.device, non_blocking=True), labels.to(args.device, non_blocking=True))
    synchronize(args.device)
    return args.steps * args.batch_size / (time.perf_counter() - started)


def plain_loop(args: argparse.Namespace) -> float:
    """Images/s of a hand-written loop doing the same work as ``GenotypeClassifier.training_step``."""
    module = make_module(args)
    net = module.net.to(args.device)
    net.train()
    net.drop_path_prob = 0.0  # what GenotypeClassifier uses in its first epoch (ramp p * epoch / epochs)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        logits, aux_logits = net(images)
        loss = F.cross_entropy(logits, labels) + 0.4 * F.cross_entropy(aux_logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()

    return timed_plain_loop(args, make_loader(args, args.warmup + args.steps), step)


class _Timer(pl.Callback):
    """Wall time from the first timed batch to the end of the last (the GPU synchronised at both ends only)."""

    def __init__(self, warmup: int, steps: int, device: str) -> None:
        self.warmup, self.last, self.device = warmup, warmup + steps - 1, device
        self.started = self.finished = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if batch_idx == self.warmup:
            synchronize(self.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if batch_idx == self.last:
            synchronize(self.device)
            self.finished = time.perf_counter()


def trainer_images_per_s(module: pl.LightningModule, loader: DataLoader, args: argparse.Namespace,
                         **trainer_options: object) -> float:
    """Images/s of ``module`` driven by ``pl.Trainer`` (no logging, checkpointing or bar) on ``loader``."""
    timer = _Timer(args.warmup, args.steps, args.device)
    trainer = pl.Trainer(
        accelerator="gpu" if args.device.startswith("cuda") else "cpu", devices=1, max_epochs=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        callbacks=[timer], **trainer_options,
    )
    trainer.fit(module, train_dataloaders=loader)
    return args.steps * args.batch_size / (timer.finished - timer.started)


def lightning_loop(args: argparse.Namespace) -> float:
    """Images/s of ``GenotypeClassifier`` under the Trainer, clipping gradients as the NAS configs do."""
    return trainer_images_per_s(make_module(args), make_loader(args, args.warmup + args.steps), args,
                                gradient_clip_val=5.0)


def report(benchmark: str, network: str, args: argparse.Namespace, plain_loop: Callable[[argparse.Namespace], float],
           lightning_loop: Callable[[argparse.Namespace], float]) -> None:
    """Alternate the two paths twice, keep each one's best (neither pays for a cold cache alone), print JSON."""
    plain_runs, lightning_runs = [], []
    for _ in range(2):
        plain_runs.append(plain_loop(args))
        lightning_runs.append(lightning_loop(args))
    plain, lightning = max(plain_runs), max(lightning_runs)
    print(json.dumps({
        "benchmark": benchmark,
        "device": args.device if not args.device.startswith("cuda") else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads(),
        "network": network,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "plain_images_per_s": round(plain, 2),
        "lightning_images_per_s": round(lightning, 2),
        "lightning_over_plain": round(lightning / plain, 4),
        "target": ">= 0.95",
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--init-channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--genotype", default="PDARTS")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both paths in 32-bit precision)")
    args = parser.parse_args()
    report("train_throughput", f"NetworkCIFAR({args.genotype}, C={args.init_channels}, layers={args.layers})", args,
           plain_loop, lightning_loop)

if __name__ == "__main__":
    main()
