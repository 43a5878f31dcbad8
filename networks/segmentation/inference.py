"""Whole-volume inference: 2D networks slice by slice (batched), 3D networks by sliding windows.

A 2D slice-stack network (``input_kind = "slices"``) segments every slice along an axis from the ``2k+1`` slices
around it (edge slices repeated beyond the volume), ``batch_size`` slices per forward pass. Several axes
(``axes: [0, 1, 2]``) give several probability volumes that are averaged (fusion of the probabilities, as
multi-view 2D methods do). A 3D network (``input_kind = "volume"``) is run on overlapping ``patch_size`` windows
whose probabilities are averaged where they overlap. Input and output sides are padded to the network's
``divisor`` and cropped back. :class:`VolumeInferer` holds these settings (the ``model.inference`` node of the
segmentation configs) and is what the module calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def _pad_to_multiple(tensor: torch.Tensor, divisor: int, dims: int) -> torch.Tensor:
    """Pad the last ``dims`` sides of ``tensor`` at their end to multiples of ``divisor`` (edge values)."""
    pads: list[int] = []
    for size in reversed(tensor.shape[-dims:]):
        pads += [0, (-size) % divisor]
    if not any(pads):
        return tensor
    return F.pad(tensor, pads, mode="replicate")


@torch.no_grad()
def slice_probabilities(net: nn.Module, volume: torch.Tensor, axis: int, batch_size: int = 16) -> torch.Tensor:
    """Class probabilities ``(C, X, Y, Z)`` of a slice-stack network applied to every slice along ``axis``."""
    k, divisor = int(net.context_slices), int(net.divisor)
    moved = volume.movedim(axis, 0)
    depth, height, width = moved.shape
    padded = _pad_to_multiple(moved[None], divisor, 2)[0]
    out = None
    offsets = torch.arange(-k, k + 1, device=volume.device)
    shares_slices = int(getattr(net, "fusion_depth", 0)) > 0 and hasattr(net, "slice_features")
    for start in range(0, depth, batch_size):
        stop = min(start + batch_size, depth)
        centres = torch.arange(start, stop, device=volume.device)
        indices = (centres[:, None] + offsets[None]).clamp(0, depth - 1)
        if shares_slices:  # each slice's pre-fusion features once per batch, not once per stack holding it
            first, last = max(start - k, 0), min(stop + k, depth)
            per_slice = net.slice_features(padded[first:last, None].float())
            logits = net.fuse_and_decode([features[indices - first] for features in per_slice])
        else:
            logits = net(padded[indices].float())
        logits = logits[..., :height, :width]
        probabilities = logits.float().softmax(dim=1)
        if out is None:
            out = probabilities.new_empty(probabilities.shape[1], depth, height, width)
        out[:, centres] = probabilities.movedim(0, 1)
    assert out is not None
    return out.movedim(1, axis + 1)


def _window_starts(length: int, window: int, stride: int) -> list[int]:
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@torch.no_grad()
def window_probabilities(net: nn.Module, volume: torch.Tensor, patch_size: Sequence[int], overlap: float = 0.5,
                         batch_size: int = 2) -> torch.Tensor:
    """Class probabilities ``(C, X, Y, Z)`` of a 3D network on sliding ``patch_size`` windows (averaged overlaps)."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    divisor = int(net.divisor)
    shape = volume.shape
    window = [max(math.ceil(min(p, n) / divisor) * divisor, divisor) for p, n in zip(patch_size, shape, strict=True)]
    padded = _pad_to_multiple(volume[None, None], divisor, 3)[0, 0]
    extra = [max(w - n, 0) for w, n in zip(window, padded.shape, strict=True)]
    if any(extra):
        padded = F.pad(padded[None, None], [0, extra[2], 0, extra[1], 0, extra[0]], mode="replicate")[0, 0]
    strides = [max(int(w * (1 - overlap)), 1) for w in window]
    corners = [(x, y, z) for x in _window_starts(padded.shape[0], window[0], strides[0])
               for y in _window_starts(padded.shape[1], window[1], strides[1])
               for z in _window_starts(padded.shape[2], window[2], strides[2])]
    total = counts = None
    for start in range(0, len(corners), batch_size):
        group = corners[start:start + batch_size]
        patches = torch.stack([padded[x:x + window[0], y:y + window[1], z:z + window[2]] for x, y, z in group])
        probabilities = net(patches[:, None].float()).float().softmax(dim=1)
        if total is None:
            total = probabilities.new_zeros(probabilities.shape[1], *padded.shape)
            counts = probabilities.new_zeros(*padded.shape)
        for (x, y, z), patch in zip(group, probabilities, strict=True):
            total[:, x:x + window[0], y:y + window[1], z:z + window[2]] += patch
            counts[x:x + window[0], y:y + window[1], z:z + window[2]] += 1
    assert total is not None and counts is not None
    return (total / counts)[:, : shape[0], : shape[1], : shape[2]]


def volume_probabilities(net: nn.Module, volume: torch.Tensor, axes: Sequence[int] = (2,), batch_size: int = 16,
                         patch_size: Sequence[int] = (64, 64, 32), overlap: float = 0.5) -> torch.Tensor:
    """Class probabilities ``(C, X, Y, Z)`` of ``volume`` (X, Y, Z): slice by slice along ``axes`` (averaged) for
    2D slice-stack networks, sliding windows for 3D networks."""
    kind = getattr(net, "input_kind", None)
    if kind == "slices":
        if not axes:
            raise ValueError("axes is empty: give the axes to segment along, e.g. [2]")
        return torch.stack([slice_probabilities(net, volume, int(a), batch_size) for a in axes]).mean(0)
    if kind == "volume":
        return window_probabilities(net, volume, patch_size, overlap, max(batch_size // 8, 1))
    raise TypeError(f"net ({type(net).__name__}) has no input_kind (slices or volume): it cannot segment volumes")


class VolumeInferer:
    """Whole-volume inference with fixed settings: ``inferer(volume, net)`` is :func:`volume_probabilities`.

    Args:
        axes: Axes a 2D slice-stack network segments along (several: their probabilities are averaged).
        batch_size: Slices per forward pass (3D sliding windows: an eighth of it).
        patch_size: Sliding-window size of 3D networks.
        overlap: Share of a window's side overlapping the next window, in [0, 1).
    """

    def __init__(self, axes: Sequence[int] = (2,), batch_size: int = 16, patch_size: Sequence[int] = (64, 64, 32),
                 overlap: float = 0.5) -> None:
        self.axes, self.patch_size = [int(a) for a in axes], [int(p) for p in patch_size]
        self.batch_size, self.overlap = int(batch_size), float(overlap)
        if not self.axes:
            raise ValueError("axes is empty: give the axes to segment along, e.g. [2]")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")

    def __call__(self, volume: torch.Tensor, net: nn.Module) -> torch.Tensor:
        """Class probabilities ``(C, X, Y, Z)`` of ``net`` on ``volume`` ``(X, Y, Z)``."""
        return volume_probabilities(net, volume, self.axes, self.batch_size, self.patch_size, self.overlap)
