"""The DARTS operation set, shared by the evaluation networks and the differentiable search space.

DARTS (Liu et al., "DARTS: Differentiable Architecture Search", arXiv:1806.09055, Sec. 2.1 and
appendix A.1) searches over eight candidate operations per edge, listed in :data:`PRIMITIVES` in the
order the official code uses (the order fixes the columns of the architecture matrices alpha).
PC-DARTS (arXiv:1907.05737) and P-DARTS (arXiv:1904.12760) reuse the same set.

Every builder in :data:`OPS` has the signature ``builder(C, stride, affine)``: ``C`` input and output
channels, ``stride`` 1 (normal cell, or a reduction-cell edge from an intermediate node) or 2 (a
reduction-cell edge from one of the two cell inputs), and ``affine`` the BatchNorm affine flag
(``True`` in the evaluation networks, ``False`` in the search space). All convolutions have no bias.
At stride 2 every operation maps ``H x W`` to ``ceil(H/2) x ceil(W/2)``, odd sizes included.

In search mode DARTS follows each pooling op by ``BatchNorm2d(C, affine=False)``; that belongs to the
edge sources of the search space (``networks.nas.search_space.EdgeSource``) and is not added here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "OPS",
    "PRIMITIVES",
    "DilConv",
    "FactorizedReduce",
    "Identity",
    "LayoutAwareBatchNorm2d",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "build_op",
]

PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class LayoutAwareBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that runs channels-last CPU inputs of fewer than 8 channels in NCHW.

    PyTorch's channels-last CPU BatchNorm kernel vectorises along the channels, so on the 4-channel tensors
    of PC-DARTS partial channels (C=16, K=4) it is 3.5x slower than the NCHW kernel even counting the two
    layout copies (forward + backward at 64x4x32x32: 3.9 vs 1.1 ms); the PC-DARTS search iteration gets
    about 17% faster on CPU. Outputs, gradients and running statistics equal the plain module's; the output
    keeps the input's layout. Wider or GPU inputs take the plain path.
    """

    #: Below this many channels a channels-last CPU input is normalised in NCHW (at 8 the two are even).
    NCHW_BELOW_CHANNELS = 8

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if (input.device.type == "cpu" and input.dim() == 4 and input.shape[1] < self.NCHW_BELOW_CHANNELS
                and not input.is_contiguous() and input.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(input.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(input)


class _ReLUFirst(nn.Sequential):
    """A sequence whose first layer is a ReLU. :meth:`forward_rectified` runs the rest on an input that is
    already rectified: the search space's mixed op computes ``relu(x)`` once for all such operations of an
    edge instead of once per operation (same result, one saved activation instead of four)."""

    def forward_rectified(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self):
            if index:
                x = layer(x)
        return x


class ReLUConvBN(_ReLUFirst):
    """ReLU, convolution (no bias), BatchNorm: the DARTS 1x1 preprocessing block."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            LayoutAwareBatchNorm2d(C_out, affine=affine),
        )


class DilConv(_ReLUFirst):
    """Dilated depthwise-separable convolution: ReLU, depthwise kxk with dilation, 1x1 conv, BN."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                C_in,
                C_in,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=C_in,
                bias=False,
            ),
            nn.Conv2d(C_in, C_out, kernel_size=1, bias=False),
            LayoutAwareBatchNorm2d(C_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Separable convolution applied twice (stride only in the first), as in DARTS appendix A.1.

    Each half is ReLU, depthwise kxk, 1x1 conv, BN; the first half keeps ``C_in`` channels.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
    ) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel_size, stride, padding, dilation=1, affine=affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, dilation=1, affine=affine),
        )

    def forward_rectified(self, x: torch.Tensor) -> torch.Tensor:
        """The op on an input that is already ``relu(x)`` (see :class:`ReLUConvBN`'s base)."""
        return self[1](self[0].forward_rectified(x))


class Identity(nn.Module):
    """The ``skip_connect`` op at stride 1 (drop-path is never applied to it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros of the (subsampled at stride 2) input's shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return torch.zeros_like(x)
        return torch.zeros_like(x[:, :, :: self.stride, :: self.stride])

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class FactorizedReduce(nn.Module):
    """Halve H and W: ReLU, two 1x1 stride-2 convs with ``C_out // 2`` outputs each, concat, BN.

    The second conv sees the input shifted by one pixel (``x[:, :, 1:, 1:]``) so the two halves sample
    complementary positions. For an odd height or width the shifted input is zero-padded by one at the
    bottom/right so both halves give ``ceil(H/2) x ceil(W/2)`` (for even sizes this padding is never
    sampled, so the result equals the official code's).
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2 != 0:
            raise ValueError(f"C_out={C_out}: FactorizedReduce needs an even number of output channels")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, kernel_size=1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, kernel_size=1, stride=2, bias=False)
        self.bn = LayoutAwareBatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_rectified(self.relu(x))

    def forward_rectified(self, x: torch.Tensor) -> torch.Tensor:
        """The op on an input that is already ``relu(x)``."""
        height, width = x.shape[-2:]
        shifted = x[:, :, 1:, 1:]
        if height % 2 or width % 2:
            shifted = F.pad(shifted, (0, width % 2, 0, height % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _skip_connect(C: int, stride: int, affine: bool) -> nn.Module:
    return Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)


OPS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": _skip_connect,
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine=affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine=affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine=affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine=affine),
}
assert tuple(OPS) == PRIMITIVES, "OPS and PRIMITIVES must list the same ops in the same order"


def build_op(name: str, C: int, stride: int, affine: bool) -> nn.Module:
    """Build the operation ``name`` (one of :data:`PRIMITIVES`); an unknown name raises ValueError."""
    try:
        builder = OPS[name]
    except KeyError:
        raise ValueError(f"name={name!r} is not an operation of the search space; known operations: "
                         f"{', '.join(PRIMITIVES)}") from None
    return builder(C, stride, affine)
