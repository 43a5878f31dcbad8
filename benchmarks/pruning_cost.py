"""Cost of each phase of Pruning from Scratch (arXiv:1909.12579) against the conventional pipeline. Prints JSON.

Measured on CIFAR-shaped data (random tensors, 32x32):

* one gate-learning step on the expanded network (gates only; weights frozen) vs one ordinary training step of
  the unexpanded network (SGD on every weight), scaled to an epoch (45k images for gate learning, 50k for
  training, as the official code splits CIFAR-10);
* the structure search: building the multiply-add table once and the bisection itself (target: under one
  second for ResNet-110 at the official expansion; the bisection rebuilds no network);
* both pipelines' whole cost at the official schedule, from the per-epoch times: Pruning from Scratch =
  10 gate epochs + retraining the pruned network 160 / (1 - p) epochs (Scratch-B); conventional = 160 epochs of the
  full network + 40 fine-tuning epochs of its pruned copy. The pruned networks are cut from random scores at
  the target (their widths, not their accuracy, set the cost). ``structures`` gives their kept widths, parameters
  and multiply-adds: PFS prunes only the blocks' inner channels, so its network keeps the expanded residual stream.

    python benchmarks/pruning_cost.py [--backbone resnet56] [--expansion 5.0] [--target 0.5] [--batch-size 128]
        [--steps 5] [--warmup 2] [--device cpu|cuda] [--bisection-backbone resnet110] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.nn import functional as F

from networks.pruning.cost import MultiplyAddTable, meta_network
from networks.pruning.families import FAMILIES
from networks.pruning.gates import ChannelGate, channel_gates, clamp_gates
from networks.pruning.pruner import reference_cost
from networks.pruning.search import search_structure
from visionsuite.complexity import count_multiply_adds, count_parameters

GATE_EPOCH_IMAGES = 45_000  # official: gates learned on the first 45k CIFAR-10 training images
TRAIN_EPOCH_IMAGES = 50_000
GATE_EPOCHS, RETRAIN_EPOCHS, FINETUNE_EPOCHS = 10, 160, 40


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_image(network: torch.nn.Module, parameters: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                      args: argparse.Namespace, gates: list[ChannelGate] | None = None) -> float:
    """Mean seconds per training image of ``steps`` steps (after ``warmup``) at ``batch_size``."""
    network.to(args.device).train()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch_size, 3, 32, 32, generator=generator).to(args.device)
    labels = torch.randint(0, 10, (args.batch_size,), generator=generator).to(args.device)
    started = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            _sync(args.device)
            started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(network(images), labels)
        if gates is not None:  # Eq. 3's sparsity term, r = 0.2, lambda = 0.5
            loss = loss + 0.5 * (torch.cat([g.gates for g in gates]).abs().mean() - 0.2) ** 2
        loss.backward()
        optimizer.step()
        if gates is not None:
            clamp_gates(gates)
    _sync(args.device)
    return (time.perf_counter() - started) / (args.steps * args.batch_size)


def training_seconds_per_image(name: str, channels: list[int] | None, width: float,
                               args: argparse.Namespace) -> float:
    network = FAMILIES[name].build(10, channels=channels, width_multiplier=width)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    return seconds_per_image(network, list(network.parameters()), optimizer, args)


def structure_summary(name: str, channels: list[int] | None, width: float) -> dict[str, object]:
    """Size of a (pruned) network: kept widths, parameters and multiply-adds at 32x32."""
    network = FAMILIES[name].build(10, channels=channels, width_multiplier=width)
    return {"expansion": width, "kept_widths": channels or FAMILIES[name].default_channels(width),
            "parameters": count_parameters(network),
            "multiply_adds": count_multiply_adds(network, torch.zeros(1, 3, 32, 32))}


def random_structure(name: str, width: float, target: float, seed: int = 0) -> list[int]:
    family = FAMILIES[name]
    network = meta_network(family.build, 10, width_multiplier=width)
    table = MultiplyAddTable(network, family.groups_of(network), 32)
    generator = torch.Generator().manual_seed(seed)
    scores = [torch.rand(w, generator=generator) for w in family.default_channels(width)]
    _, reference = reference_cost(family, 10, 1.0, 32)
    return [len(kept) for kept in search_structure(scores, table, reference, target).kept]


def bisection_cost(name: str, width: float, target: float) -> dict[str, float]:
    family = FAMILIES[name]
    started = time.perf_counter()
    network = meta_network(family.build, 10, width_multiplier=width)
    table = MultiplyAddTable(network, family.groups_of(network), 32)
    _, reference = reference_cost(family, 10, 1.0, 32)
    table_seconds = time.perf_counter() - started
    scores = [torch.rand(w, generator=torch.Generator().manual_seed(i))
              for i, w in enumerate(family.default_channels(width))]
    started = time.perf_counter()
    result = search_structure(scores, table, reference, target)
    return {"backbone": name, "expansion": width, "table_seconds": round(table_seconds, 4),
            "bisection_seconds": round(time.perf_counter() - started, 4), "target_bisection_seconds": 1.0,
            "iterations": result.iterations, "achieved": round(result.achieved, 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="resnet56")
    parser.add_argument("--expansion", type=float, default=5.0, help="official CIFAR: 5.0 (ResNet), 1.25 (VGG)")
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bisection-backbone", default="resnet110")
    parser.add_argument("--bisection-expansion", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    family = FAMILIES[args.backbone]
    torch.manual_seed(0)
    gated = family.build(10, width_multiplier=args.expansion, gate_layer=ChannelGate)
    gates = channel_gates(gated, family.groups_of(gated))
    for parameter in gated.parameters():
        parameter.requires_grad_(False)
    for gate in gates:
        gate.gates.requires_grad_(True)
    gate_parameters = [gate.gates for gate in gates]
    gate_step = seconds_per_image(gated, gate_parameters, torch.optim.Adam(gate_parameters, lr=0.01), args, gates)
    full_step = training_seconds_per_image(args.backbone, None, 1.0, args)
    pfs_channels = random_structure(args.backbone, args.expansion, args.target)
    baseline_channels = random_structure(args.backbone, 1.0, args.target)
    pfs_pruned_step = training_seconds_per_image(args.backbone, pfs_channels, args.expansion, args)
    baseline_pruned_step = training_seconds_per_image(args.backbone, baseline_channels, 1.0, args)

    epoch = {
        "gate_learning_expanded": gate_step * GATE_EPOCH_IMAGES,
        "training_unexpanded": full_step * TRAIN_EPOCH_IMAGES,
        "training_pfs_pruned": pfs_pruned_step * TRAIN_EPOCH_IMAGES,
        "training_baseline_pruned": baseline_pruned_step * TRAIN_EPOCH_IMAGES,
    }
    retrain_epochs = int(RETRAIN_EPOCHS / (1 - args.target))
    pfs_total = GATE_EPOCHS * epoch["gate_learning_expanded"] + retrain_epochs * epoch["training_pfs_pruned"]
    baseline_total = (RETRAIN_EPOCHS * epoch["training_unexpanded"]
                      + FINETUNE_EPOCHS * epoch["training_baseline_pruned"])
    report = {
        "backbone": args.backbone, "expansion": args.expansion, "target": args.target, "device": args.device,
        "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "epoch_seconds": {key: round(value, 2) for key, value in epoch.items()},
        "structures": {"unexpanded": structure_summary(args.backbone, None, 1.0),
                       "pfs_pruned": structure_summary(args.backbone, pfs_channels, args.expansion),
                       "baseline_pruned": structure_summary(args.backbone, baseline_channels, 1.0)},
        "gate_epoch_vs_training_epoch": round(epoch["gate_learning_expanded"] / epoch["training_unexpanded"], 3),
        "bisection": bisection_cost(args.bisection_backbone, args.bisection_expansion, args.target),
        "pipeline_hours": {
            "pruning_from_scratch": {"gate_learning": round(GATE_EPOCHS * epoch["gate_learning_expanded"] / 3600, 3),
                                     f"retrain_scratch_b_{retrain_epochs}_epochs":
                                         round(retrain_epochs * epoch["training_pfs_pruned"] / 3600, 3),
                                     "total": round(pfs_total / 3600, 3)},
            "conventional": {"pretrain_160_epochs": round(RETRAIN_EPOCHS * epoch["training_unexpanded"] / 3600, 3),
                             "finetune_40_epochs": round(FINETUNE_EPOCHS * epoch["training_baseline_pruned"] / 3600, 3),
                             "total": round(baseline_total / 3600, 3)},
        },
        "pfs_vs_conventional_total": round(pfs_total / baseline_total, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
