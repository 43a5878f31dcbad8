"""Training-sample loading throughput (samples/s): volumes cached in memory vs the NIfTI files read per sample.

Writes a synthetic Decathlon dataset (``datamodules.writers.nifti``) of ``--cases`` volumes of ``--shape`` into a
temporary folder, then draws ``--samples`` slice-stack samples (2k+1 slices, ``--crop`` in-plane) through the
real DataModule twice: ``data.cache=true`` (each volume read and preprocessed once) and ``data.cache=false``
(read for every sample). The cached figure excludes the one-off loading, which is reported apart. Prints JSON.

    python benchmarks/volume_loading.py [--cases 4] [--shape 128 128 48] [--samples 200] [--crop 96 96]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from datamodules.volumes import VolumeDataModule
from datamodules.writers.nifti import write_synthetic_ct_dataset


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--shape", type=int, nargs=3, default=[128, 128, 48])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--crop", type=int, nargs=2, default=[96, 96])
    parser.add_argument("--context-slices", type=int, default=2)
    return parser.parse_args()


def draw(root: Path, args: argparse.Namespace, cache: bool) -> dict[str, float]:
    data = VolumeDataModule(str(root), num_classes=3, val_fraction=0.0, test_fraction=0.0, cache=cache,
                            crop_size=args.crop, context_slices=args.context_slices,
                            samples_per_epoch=args.samples, batch_size=1)
    started = time.perf_counter()
    data.setup("fit")  # fills the cache when cache=true
    loading = time.perf_counter() - started
    dataset = data.train_dataloader().dataset
    started = time.perf_counter()
    for index in range(args.samples):
        dataset[index]
    elapsed = time.perf_counter() - started
    return {"samples_per_s": round(args.samples / elapsed, 1), "setup_seconds": round(loading, 3)}


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = write_synthetic_ct_dataset(Path(folder) / "data", args.cases, args.shape, num_test_images=0)
        cached, uncached = draw(root, args, True), draw(root, args, False)
    print(json.dumps({
        "cases": args.cases, "volume_shape": args.shape, "crop": args.crop, "slices": 2 * args.context_slices + 1,
        "samples": args.samples, "cached": cached, "read_per_sample": uncached,
        "speedup": round(cached["samples_per_s"] / uncached["samples_per_s"], 1),
    }, indent=2))


if __name__ == "__main__":
    main()
