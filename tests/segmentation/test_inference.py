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


class _Pointwise(nn.Module):
    """A 1x1x1 convolution: its sliding-window output must equal its output on the whole volume."""

    input_kind, divisor = "volume", 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 3, 1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        return self.conv(volume)


def test_sliding_windows_cover_the_volume_and_average_overlaps() -> None:
    net = _Pointwise().eval()
    volume = torch.rand(13, 9, 6)
    windows = window_probabilities(net, volume, patch_size=(8, 8, 4), overlap=0.5, batch_size=3)
    whole = net(volume[None, None])[0].softmax(0)
    assert windows.shape == (3, 13, 9, 6) and torch.allclose(windows, whole, atol=1e-6)
