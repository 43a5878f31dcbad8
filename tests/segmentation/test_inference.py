"""Whole-volume inference equals the naive slice-by-slice / window-by-window computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from networks.segmentation import ThickenedUNet2D, thickened_unet2d
from networks.segmentation.inference import slice_probabilities, volume_probabilities, window_probabilities


@pytest.mark.parametrize(("k", "fusion_depth"), [(1, 1), (2, 2), (1, 0)])
def test_batched_slice_inference_equals_one_stack_at_a_time(k: int, fusion_depth: int) -> None:
    """Batched inference shares each slice's pre-fusion features between the stacks holding it (fusion_depth >= 1;
    plain 2D otherwise): the result is what the network gives on each stack alone."""
    torch.manual_seed(0)
    net = ThickenedUNet2D(3, context_slices=k, channels=(4, 8, 8), fusion_depth=fusion_depth,
                          highway=fusion_depth > 0).eval()
    volume = torch.rand(10, 7, 5)  # sides not multiples of the divisor: padded and cropped back
    batched = slice_probabilities(net, volume, axis=1, batch_size=3)
    assert batched.shape == (3, 10, 7, 5)
    for s in range(7):
        neighbours = [min(max(s + o, 0), 6) for o in range(-k, k + 1)]
        stack = volume[:, neighbours, :].permute(1, 0, 2)  # (2k+1 slices, X, Z)
        padded = torch.nn.functional.pad(stack[None], (0, 3, 0, 2), mode="replicate")  # to multiples of 4
        expected = net(padded)[0, :, :10, :5].softmax(0)
        assert torch.allclose(batched[:, :, s, :], expected, atol=1e-5)


def test_several_axes_average_their_probabilities() -> None:
    net = thickened_unet2d(2, context_slices=1, channels=(4, 8), fusion_depth=1).eval()
    volume = torch.rand(6, 6, 6)
    fused = volume_probabilities(net, volume, axes=[0, 2], batch_size=4)
    expected = (slice_probabilities(net, volume, 0) + slice_probabilities(net, volume, 2)) / 2
    assert torch.allclose(fused, expected, atol=1e-6)
    assert torch.allclose(fused.sum(0), torch.ones(6, 6, 6), atol=1e-5)


class _Conv3d(nn.Module):
    """A 3D network of one convolution: kernel 1 (pointwise) or 3 (windows' borders matter)."""

    input_kind, divisor = "volume", 4

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, kernel_size, padding=kernel_size // 2)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.conv(volume)


def _former_window_probabilities(net: nn.Module, volume: torch.Tensor, window: tuple[int, int, int],
                                 overlap: float) -> torch.Tensor:
    """The suite's sliding windows before MONAI (volume sides >= the window): starts every ``window x (1 -
    overlap)`` voxels plus one flush with the end, the windows' probabilities averaged where they overlap."""
    def starts(length: int, size: int) -> list[int]:
        found = list(range(0, length - size + 1, max(int(size * (1 - overlap)), 1)))
        return found if found[-1] == length - size else [*found, length - size]

    total, counts = torch.zeros(3, *volume.shape), torch.zeros(volume.shape)
    for x in starts(volume.shape[0], window[0]):
        for y in starts(volume.shape[1], window[1]):
            for z in starts(volume.shape[2], window[2]):
                where = (slice(x, x + window[0]), slice(y, y + window[1]), slice(z, z + window[2]))
                total[(slice(None), *where)] += net(volume[where][None, None])[0].softmax(0)
                counts[where] += 1
    return total / counts


def test_monai_sliding_windows_with_constant_blending_give_the_former_outputs() -> None:
    torch.manual_seed(0)
    net = _Conv3d(3).eval()
    volume = torch.rand(20, 16, 12, generator=torch.Generator().manual_seed(3))
    windows = window_probabilities(net, volume, patch_size=(8, 8, 4), overlap=0.5, mode="constant", batch_size=3)
    assert windows.shape == (3, 20, 16, 12)
    with torch.no_grad():
        assert torch.allclose(windows, _former_window_probabilities(net, volume, (8, 8, 4), 0.5), atol=1e-6)
    # the former implementation's outputs on this volume (sums of regions), computed before it was replaced
    assert abs(float(windows[0].sum()) - 1443.4604) < 1e-3
    assert abs(float(windows[1, 3:9, 2:7, 5].sum()) - 9.910422) < 1e-5
    weighted = windows[:, :8, :8, :4] * torch.arange(3.0)[:, None, None, None]
    assert abs(float(weighted.sum()) - 224.0722) < 1e-3


@pytest.mark.parametrize("mode", ["constant", "gaussian"])
def test_sliding_windows_cover_the_volume(mode: str) -> None:
    """A pointwise network gives the same probabilities in every window: any blending returns them, and a volume
    smaller than a window is padded and cropped back."""
    net = _Conv3d(1).eval()
    for shape in [(13, 9, 6), (5, 6, 3)]:
        volume = torch.rand(*shape)
        windows = volume_probabilities(net, volume, patch_size=(8, 8, 4), overlap=0.5, batch_size=24, mode=mode)
        whole = net(volume[None, None])[0].softmax(0)
        assert windows.shape == (3, *shape) and torch.allclose(windows, whole, atol=1e-5)
