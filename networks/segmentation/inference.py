"""Whole-volume inference: 2D networks slice by slice (batched), 3D networks by sliding windows.

A 2D slice-stack network (``input_kind = "slices"``) segments every slice along an axis from the ``2k+1`` slices
around it (edge slices repeated beyond the volume), ``batch_size`` slices per forward pass. Several axes
(``axes: [0, 1, 2]``) give several probability volumes that are averaged (fusion of the probabilities, as
multi-view 2D methods do); the sides of the slices are padded to the network's ``divisor`` and cropped back. This
slice-stack inference is the thickened 2D method's own (arXiv:1904.01150). A 3D network (``input_kind = "volume"``)
is run by MONAI's ``sliding_window_inference`` on overlapping ``patch_size`` windows whose probabilities are blended
where they overlap (``mode``: ``constant`` or ``gaussian``). :class:`VolumeInferer` holds these settings (the
``model.inference`` node of the segmentation configs) and is what the module calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

BLEND_MODES = ("constant", "gaussian")


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


@torch.no_grad()
def window_probabilities(net: nn.Module, volume: torch.Tensor, patch_size: Sequence[int], overlap: float = 0.5,
                         mode: str = "constant", batch_size: int = 2) -> torch.Tensor:
    """Class probabilities ``(C, X, Y, Z)`` of a 3D network on sliding ``patch_size`` windows: MONAI's
    ``sliding_window_inference`` blending the windows' probabilities (``constant``: the mean of the overlapping
    windows; ``gaussian``: weighted towards each window's centre, nnU-Net's choice). A volume smaller than a window
    is padded with its edge values, and cropped back."""
    from monai.inferers import sliding_window_inference

    probabilities = sliding_window_inference(
        volume[None, None].float(), roi_size=[int(p) for p in patch_size], sw_batch_size=batch_size,
        predictor=lambda patches: net(patches).float().softmax(dim=1), overlap=overlap, mode=mode,
        padding_mode="replicate")
    return torch.as_tensor(probabilities)[0]


def volume_probabilities(net: nn.Module, volume: torch.Tensor, axes: Sequence[int] = (2,), batch_size: int = 16,
                         patch_size: Sequence[int] = (64, 64, 32), overlap: float = 0.5,
                         mode: str = "constant") -> torch.Tensor:
    """Class probabilities ``(C, X, Y, Z)`` of ``volume`` (X, Y, Z): slice by slice along ``axes`` (averaged) for
    2D slice-stack networks, sliding windows for 3D networks."""
    kind = getattr(net, "input_kind", None)
    if kind == "slices":
        if not axes:
            raise ValueError("axes is empty: give the axes to segment along, e.g. [2]")
        return torch.stack([slice_probabilities(net, volume, int(a), batch_size) for a in axes]).mean(0)
    if kind == "volume":
        return window_probabilities(net, volume, patch_size, overlap, mode, max(batch_size // 8, 1))
    raise TypeError(f"net ({type(net).__name__}) has no input_kind (slices or volume): it cannot segment volumes")


class VolumeInferer:
    """Whole-volume inference with fixed settings: ``inferer(volume, net)`` is :func:`volume_probabilities`.

    Args:
        axes: Axes a 2D slice-stack network segments along (several: their probabilities are averaged).
        batch_size: Slices per forward pass (3D sliding windows: an eighth of it).
        patch_size: Sliding-window size of 3D networks.
        overlap: Share of a window's side overlapping the next window, in [0, 1).
        mode: How 3D windows are blended where they overlap: ``constant`` (mean) or ``gaussian``.
    """

    def __init__(self, axes: Sequence[int] = (2,), batch_size: int = 16, patch_size: Sequence[int] = (64, 64, 32),
                 overlap: float = 0.5, mode: str = "constant") -> None:
        self.axes, self.patch_size = [int(a) for a in axes], [int(p) for p in patch_size]
        self.batch_size, self.overlap, self.mode = int(batch_size), float(overlap), str(mode)
        if not self.axes:
            raise ValueError("axes is empty: give the axes to segment along, e.g. [2]")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if self.mode not in BLEND_MODES:
            raise ValueError(f"mode must be one of {', '.join(BLEND_MODES)}, got {mode!r}")

    def __call__(self, volume: torch.Tensor, net: nn.Module) -> torch.Tensor:
        """Class probabilities ``(C, X, Y, Z)`` of ``net`` on ``volume`` ``(X, Y, Z)``."""
        return volume_probabilities(net, volume, self.axes, self.batch_size, self.patch_size, self.overlap, self.mode)
