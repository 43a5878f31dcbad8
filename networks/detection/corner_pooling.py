"""Directional pooling, cascade corner pooling and center pooling of CenterNet (arXiv:1904.08189, Sec. 3.4).

The four directional pools of CornerNet (arXiv:1808.01244, Sec. 3.4) are running maxima along one axis:

* ``top_pool(x)[i, j]    = max_{k >= i} x[k, j]``  (looks down from each row, finds the top edge of an object)
* ``left_pool(x)[i, j]   = max_{k >= j} x[i, k]``  (looks right)
* ``bottom_pool(x)[i, j] = max_{k <= i} x[k, j]``
* ``right_pool(x)[i, j]  = max_{k <= j} x[i, k]``

Each is one ``torch.cummax`` (on the flipped tensor for top/left): exact, differentiable (the gradient of
every output goes to the element that attains the maximum, as with ``torch.max``) and with no C++/CUDA
extension to build (the official code's extension is the most common failure of its users).

Modules (channel sizes as in the official code: ``pool_channels = 128`` inside every pooling module):

* :class:`CenterPooling` (Fig. 4a): ``b1 = bottom(top(conv_a(x)))`` (the column maximum),
  ``b2 = right(left(conv_b(x)))`` (the row maximum), then
  ``out = conv3-BN-ReLU(ReLU(BN(conv3x3(b1 + b2)) + BN(conv1x1(x))))``.
* :class:`CascadeCornerPooling` (Fig. 4c), top-left: ``v1 = top(conv3x3(conv_1(x) + left(look_1(x))))``,
  ``v2 = left(conv3x3(conv_2(x) + top(look_2(x))))``, then the tail of center pooling on ``v1 + v2``.
  Bottom-right mirrors it with bottom/right. Each ``conv_*``/``look_*`` is its own 3x3 conv-BN-ReLU and the
  3x3 conv before the second pool has no BN, as in the official code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

Pool = Callable[[torch.Tensor], torch.Tensor]

_ROWS, _COLUMNS = -2, -1  # axes of an (..., H, W) tensor


def _running_max(x: torch.Tensor, axis: int, from_the_end: bool) -> torch.Tensor:
    """``cummax`` along ``axis`` (starting at its last element when ``from_the_end``).

    The scan runs on the last, contiguous axis, where ``cummax`` is fastest: the rows of a vertical pool are
    moved there and back (on a CPU this makes top/bottom pooling about 1.5x faster than ``cummax(dim=2)``).
    """
    last = x.dim() - 1
    axis = axis % x.dim()
    moved = x if axis == last else x.transpose(axis, last).contiguous()
    if from_the_end:
        moved = moved.flip(last)
    out = moved.cummax(last).values
    if from_the_end:
        out = out.flip(last)
    return out if axis == last else out.transpose(axis, last).contiguous()


def top_pool(x: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = max_{k >= i} x[..., k, j]`` (running maximum from the bottom row upwards)."""
    return _running_max(x, _ROWS, from_the_end=True)


def left_pool(x: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = max_{k >= j} x[..., i, k]`` (running maximum from the right column leftwards)."""
    return _running_max(x, _COLUMNS, from_the_end=True)


def bottom_pool(x: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = max_{k <= i} x[..., k, j]`` (running maximum from the top row downwards)."""
    return _running_max(x, _ROWS, from_the_end=False)


def right_pool(x: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = max_{k <= j} x[..., i, k]`` (running maximum from the left column rightwards)."""
    return _running_max(x, _COLUMNS, from_the_end=False)


class ConvBnRelu(nn.Sequential):
    """``k x k`` convolution (no bias), BatchNorm and ReLU; ``padding = k // 2``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class _PoolingTail(nn.Module):
    """``conv3-BN-ReLU(ReLU(BN(conv3x3(pooled)) + BN(conv1x1(x))))``: the end shared by both pooling modules."""

    def __init__(self, channels: int, pool_channels: int) -> None:
        super().__init__()
        self.pooled_conv = nn.Conv2d(pool_channels, channels, 3, padding=1, bias=False)
        self.pooled_bn = nn.BatchNorm2d(channels)
        self.skip_conv = nn.Conv2d(channels, channels, 1, bias=False)
        self.skip_bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.out_conv = ConvBnRelu(channels, channels, 3)

    def forward(self, pooled: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        merged = self.pooled_bn(self.pooled_conv(pooled)) + self.skip_bn(self.skip_conv(x))
        return self.out_conv(self.relu(merged))


class CenterPooling(nn.Module):
    """Center pooling (arXiv:1904.08189, Sec. 3.4, Fig. 4a): maximum along the whole row plus the whole column.

    Args:
        channels: Input and output channels (256 in CenterNet).
        pool_channels: Channels of the pooled branches (128 in the official code).
    """

    def __init__(self, channels: int, pool_channels: int = 128) -> None:
        super().__init__()
        self.column_conv = ConvBnRelu(channels, pool_channels, 3)
        self.row_conv = ConvBnRelu(channels, pool_channels, 3)
        self.tail = _PoolingTail(channels, pool_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        column_max = bottom_pool(top_pool(self.column_conv(x)))
        row_max = right_pool(left_pool(self.row_conv(x)))
        return self.tail(column_max + row_max, x)


class CascadeCornerPooling(nn.Module):
    """Cascade corner pooling (arXiv:1904.08189, Sec. 3.4, Fig. 4c) for the top-left or bottom-right corner.

    Top-left: ``first = top`` and ``second = left`` (bottom-right: ``bottom`` and ``right``);
    ``v1 = first(conv3x3(conv_1(x) + second(look_1(x))))`` finds the boundary maximum and then looks inside
    the object along the other axis; ``v2`` swaps the roles; ``out = tail(v1 + v2, x)``.

    Args:
        channels: Input and output channels (256 in CenterNet).
        corner: ``"top_left"`` or ``"bottom_right"``.
        pool_channels: Channels of the pooled branches (128 in the official code).
    """

    def __init__(
        self, channels: int, corner: Literal["top_left", "bottom_right"], pool_channels: int = 128
    ) -> None:
        super().__init__()
        if corner == "top_left":
            self.first_pool, self.second_pool = top_pool, left_pool
        elif corner == "bottom_right":
            self.first_pool, self.second_pool = bottom_pool, right_pool
        else:
            raise ValueError(f"corner must be 'top_left' or 'bottom_right', got {corner!r}")
        self.corner = corner
        self.conv_1 = ConvBnRelu(channels, pool_channels, 3)
        self.look_1 = ConvBnRelu(channels, pool_channels, 3)
        self.cascade_conv_1 = nn.Conv2d(pool_channels, pool_channels, 3, padding=1, bias=False)
        self.conv_2 = ConvBnRelu(channels, pool_channels, 3)
        self.look_2 = ConvBnRelu(channels, pool_channels, 3)
        self.cascade_conv_2 = nn.Conv2d(pool_channels, pool_channels, 3, padding=1, bias=False)
        self.tail = _PoolingTail(channels, pool_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v1 = self.first_pool(self.cascade_conv_1(self.conv_1(x) + self.second_pool(self.look_1(x))))
        v2 = self.second_pool(self.cascade_conv_2(self.conv_2(x) + self.first_pool(self.look_2(x))))
        return self.tail(v1 + v2, x)

    def extra_repr(self) -> str:
        return f"corner={self.corner!r}"


def reference_pool(x: torch.Tensor, direction: str) -> torch.Tensor:
    """The definition of corner pooling (CornerNet, arXiv:1808.01244 Sec. 3.4), one output element at a time.

    Slow on purpose: the reference that tests and ``benchmarks/corner_pooling.py`` compare the cummax
    pools against. ``direction`` is ``top``, ``bottom``, ``left`` or ``right``.
    """
    height, width = x.shape[-2:]
    rows = []
    for i in range(height):
        row = []
        for j in range(width):
            if direction == "top":
                window = x[..., i:, j]
            elif direction == "bottom":
                window = x[..., : i + 1, j]
            elif direction == "left":
                window = x[..., i, j:]
            else:
                window = x[..., i, : j + 1]
            row.append(window.max(dim=-1).values)
        rows.append(torch.stack(row, dim=-1))
    return torch.stack(rows, dim=-2)
