"""Training samples cut from cached volumes: stacks of 2k+1 neighbouring slices (2D networks) or 3D patches.

The thickened 2D network (Yu et al., arXiv:1904.01150, abstract) takes "a large number of 2D slices" around
the slice it segments: a sample here is the ``2k+1`` slices centred on slice ``s`` along one of the chosen axes
(``k = context_slices``), an in-plane crop of ``crop_size`` around a chosen voxel, and the label of the centre
slice. Neighbours beyond the volume repeat its edge slice. The 3D baseline takes ``patch_size`` crops with their
full label instead.

Foreground-biased sampling: with probability ``foreground_probability`` the chosen voxel is a random voxel of a
random foreground class present in the case (thin vessels fill under 1% of a CT volume and would otherwise be
nearly absent from the batches); otherwise a uniformly random voxel.

Sample ``i`` of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e * samples_per_epoch + i])``
(:class:`EpochOffsetSampler` yields those indices), so the samples depend only on the seed and the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from datamodules.volumes.cases import CaseSource, VolumeCase
from visionsuite.errors import ConfigError

SAMPLE_KINDS = ("stack", "patch")


@dataclass
class SampleSettings:
    """What one training sample is (see the module docstring)."""

    kind: str = "stack"
    context_slices: int = 2
    axes: tuple[int, ...] = (2,)
    crop_size: tuple[int, int] = (96, 96)
    patch_size: tuple[int, int, int] = (64, 64, 32)
    foreground_probability: float = 0.7

    def __post_init__(self) -> None:
        if self.kind not in SAMPLE_KINDS:
            raise ConfigError(f"data.sample_kind={self.kind!r}: use stack (2D networks) or patch (3D networks).")
        if self.context_slices < 0:
            raise ConfigError(f"data.context_slices={self.context_slices}: k must be >= 0 (2k+1 slices).")
        if not self.axes or any(a not in (0, 1, 2) for a in self.axes):
            raise ConfigError(f"data.axes={list(self.axes)}: give array axes among 0, 1, 2.")
        if not 0 <= self.foreground_probability <= 1:
            raise ConfigError(f"data.foreground_probability={self.foreground_probability} must be in [0, 1].")

    @property
    def stack_depth(self) -> int:
        return 2 * self.context_slices + 1


def crop_with_padding(volume: torch.Tensor, starts: Sequence[int], sizes: Sequence[int], fill: float) -> torch.Tensor:
    """The box ``[starts, starts + sizes)`` of the last ``len(starts)`` dims of ``volume``, ``fill`` outside it."""
    lead = volume.shape[: volume.dim() - len(starts)]
    out = volume.new_full((*lead, *sizes), fill)
    source, target = [slice(None)] * len(lead), [slice(None)] * len(lead)
    for start, size, length in zip(starts, sizes, volume.shape[len(lead):], strict=True):
        low, high = max(start, 0), min(start + size, length)
        if high <= low:
            return out
        source.append(slice(low, high))
        target.append(slice(low - start, high - start))
    out[tuple(target)] = volume[tuple(source)]
    return out


def choose_center(case: VolumeCase, rng: np.random.Generator, foreground_probability: float) -> tuple[int, int, int]:
    """A voxel of ``case``: foreground (a random present class, then a random voxel of it) with the given probability."""
    shape = case.image.shape
    if case.foreground and rng.random() < foreground_probability:
        classes = sorted(case.foreground)
        points = case.foreground[classes[int(rng.integers(len(classes)))]]
        flat = int(points[int(rng.integers(len(points)))])
        return tuple(int(v) for v in np.unravel_index(flat, shape))  # type: ignore[return-value]
    return tuple(int(rng.integers(n)) for n in shape)  # type: ignore[return-value]


def slice_stack(volume: torch.Tensor, axis: int, center: int, context_slices: int) -> torch.Tensor:
    """The ``2k+1`` slices around ``center`` along ``axis`` as ``(2k+1, ...)``; out-of-range neighbours repeat the
    edge slice (so volumes thinner than the stack are padded)."""
    moved = volume.movedim(axis, 0)
    indices = torch.arange(center - context_slices, center + context_slices + 1).clamp(0, moved.shape[0] - 1)
    return moved[indices]


def _jittered_start(center: int, size: int, rng: np.random.Generator) -> int:
    """A crop start that keeps ``center`` inside the crop, not always in its middle."""
    jitter = int(rng.integers(-(size // 4), size // 4 + 1)) if size >= 4 else 0
    return center - size // 2 + jitter


class VolumeSampleDataset(Dataset):
    """Random training samples of a split (see the module docstring); ``len`` is the samples per epoch."""

    def __init__(self, source: CaseSource, settings: SampleSettings, samples_per_epoch: int, seed: int = 0) -> None:
        if len(source) == 0:
            raise ConfigError("The training split has no case: lower data.val_fraction / data.test_fraction.")
        self.source, self.settings = source, settings
        self.samples_per_epoch, self.seed = int(samples_per_epoch), int(seed)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, int(index)])
        case = self.source.case(int(rng.integers(len(self.source))))
        center = choose_center(case, rng, self.settings.foreground_probability)
        fill = case.fill_value
        if self.settings.kind == "patch":
            size = self.settings.patch_size
            starts = [_jittered_start(c, s, rng) for c, s in zip(center, size, strict=True)]
            image = crop_with_padding(case.image, starts, size, fill).float()[None]
            label = crop_with_padding(case.label, starts, size, 0).long()
            return {"image": image, "label": label, "case_index": case.index}
        axis = self.settings.axes[int(rng.integers(len(self.settings.axes)))]
        in_plane = [c for dim, c in enumerate(center) if dim != axis]
        starts = [_jittered_start(c, s, rng) for c, s in zip(in_plane, self.settings.crop_size, strict=True)]
        stack = slice_stack(case.image, axis, center[axis], self.settings.context_slices)
        label = case.label.movedim(axis, 0)[center[axis]]
        return {"image": crop_with_padding(stack, starts, self.settings.crop_size, fill).float(),
                "label": crop_with_padding(label, starts, self.settings.crop_size, 0).long(),
                "case_index": case.index}


class EpochOffsetSampler(Sampler[int]):
    """Yields ``epoch * n + i`` for ``i < n``: fresh random samples every epoch, set by Lightning's ``set_epoch``."""

    def __init__(self, num_samples: int) -> None:
        self.num_samples, self.epoch = int(num_samples), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * self.num_samples
        return iter(range(offset, offset + self.num_samples))

    def __len__(self) -> int:
        return self.num_samples


class WholeVolumeDataset(Dataset):
    """One whole case per item (validation, test, prediction): inference runs slice by slice on it."""

    def __init__(self, source: CaseSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source.case(index).as_item()


def single_item(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate of whole volumes (batch size 1): the item itself, volumes differ in shape."""
    if len(batch) != 1:
        raise ConfigError("Whole-volume loaders take one case per batch (data.eval_batch_size is 1).")
    return batch[0]
