"""Invariants of the DARTS operation set (networks/nas/operations.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from networks.nas.operations import (
    OPS,
    PRIMITIVES,
    FactorizedReduce,
    Identity,
    LayoutAwareBatchNorm2d,
    Zero,
    build_op,
)

CHANNELS = 8


def test_primitives_order_matches_darts() -> None:
    assert PRIMITIVES == (
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    )
    assert tuple(OPS) == PRIMITIVES


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("size", [8, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("affine", [True, False])
def test_op_output_shape(name: str, size: int, stride: int, affine: bool) -> None:
    op = OPS[name](CHANNELS, stride, affine)
    x = torch.randn(2, CHANNELS, size, size + 2)
    y = op(x)
    assert y.shape == (2, CHANNELS, math.ceil(size / stride), math.ceil((size + 2) / stride))


@pytest.mark.parametrize("stride", [1, 2])
def test_zero_gives_zeros(stride: int) -> None:
    y = OPS["none"](CHANNELS, stride, True)(torch.randn(2, CHANNELS, 9, 9))
    assert isinstance(OPS["none"](CHANNELS, stride, True), Zero)
    assert torch.count_nonzero(y) == 0


def test_skip_connect_is_identity_at_stride_1_and_factorized_reduce_at_stride_2() -> None:
    x = torch.randn(2, CHANNELS, 6, 6)
    identity = OPS["skip_connect"](CHANNELS, 1, True)
    assert isinstance(identity, Identity)
    assert identity(x) is x
    assert isinstance(OPS["skip_connect"](CHANNELS, 2, True), FactorizedReduce)


def test_factorized_reduce_even_size_matches_unpadded_shift() -> None:
    """For even sizes the odd-size padding must not change the official result."""
    torch.manual_seed(0)
    op = FactorizedReduce(CHANNELS, CHANNELS).eval()
    x = torch.randn(2, CHANNELS, 8, 8)
    relu = torch.relu(x)
    expected = op.bn(torch.cat([op.conv_1(relu), op.conv_2(relu[:, :, 1:, 1:])], dim=1))
    torch.testing.assert_close(op(x), expected)


@pytest.mark.parametrize("affine", [True, False])
def test_affine_flag_reaches_batch_norm(affine: bool) -> None:
    for name in ("sep_conv_3x3", "dil_conv_5x5", "skip_connect"):
        op = OPS[name](CHANNELS, 2, affine)
        norms = [module for module in op.modules() if isinstance(module, nn.BatchNorm2d)]
        assert norms and all(norm.affine == affine for norm in norms)


def test_convolutions_have_no_bias() -> None:
    for name in PRIMITIVES:
        for module in OPS[name](CHANNELS, 2, True).modules():
            if isinstance(module, nn.Conv2d):
                assert module.bias is None


def test_avg_pool_excludes_padding() -> None:
    y = OPS["avg_pool_3x3"](CHANNELS, 1, True)(torch.ones(1, CHANNELS, 5, 5))
    torch.testing.assert_close(y, torch.ones_like(y))


def test_build_op_unknown_name_lists_known_ops() -> None:
    with pytest.raises(ValueError, match="^name='conv_7x7' is not an operation.*sep_conv_3x3"):
        build_op("conv_7x7", CHANNELS, 1, True)


@pytest.mark.parametrize("channels", [4, 16])
@pytest.mark.parametrize("affine", [True, False])
def test_layout_aware_batch_norm_equals_batch_norm_and_keeps_channels_last(
    channels: int, affine: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    plain, aware = nn.BatchNorm2d(channels, affine=affine), LayoutAwareBatchNorm2d(channels, affine=affine)
    aware.load_state_dict(plain.state_dict())
    layouts_seen: list[bool] = []
    original_forward = nn.BatchNorm2d.forward

    def recording_forward(module: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        layouts_seen.append(x.is_contiguous())
        return original_forward(module, x)

    monkeypatch.setattr(nn.BatchNorm2d, "forward", recording_forward)
    x = torch.randn(6, channels, 5, 7).contiguous(memory_format=torch.channels_last) * 3 + 1
    x_plain, x_aware = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    gradient = torch.randn_like(x)
    out_plain, out_aware = plain(x_plain), aware(x_aware)
    (out_plain * gradient).sum().backward()
    (out_aware * gradient).sum().backward()

    # Fewer than 8 channels: normalised in NCHW; wider: the plain channels-last path.
    assert layouts_seen[1] == (channels < LayoutAwareBatchNorm2d.NCHW_BELOW_CHANNELS)
    assert out_aware.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_aware, out_plain)
    torch.testing.assert_close(x_aware.grad, x_plain.grad)
    torch.testing.assert_close(aware.running_mean, plain.running_mean)
    torch.testing.assert_close(aware.running_var, plain.running_var)
    if affine:
        torch.testing.assert_close(aware.weight.grad, plain.weight.grad)
        torch.testing.assert_close(aware.bias.grad, plain.bias.grad)
    aware.eval(), plain.eval()
    torch.testing.assert_close(aware(x), plain(x))


def test_search_operations_use_the_layout_aware_batch_norm() -> None:
    for name in ("sep_conv_3x3", "dil_conv_5x5", "skip_connect"):
        op = OPS[name](CHANNELS, 2, False)
        norms = [module for module in op.modules() if isinstance(module, nn.BatchNorm2d)]
        assert norms and all(isinstance(module, LayoutAwareBatchNorm2d) for module in norms)
