"""Directional pools, cascade corner pooling and center pooling against naive loop implementations."""

from __future__ import annotations

import pytest
import torch

from networks.detection.corner_pooling import (
    CascadeCornerPooling,
    CenterPooling,
    bottom_pool,
    left_pool,
    reference_pool,
    right_pool,
    top_pool,
)

POOLS = {"top": top_pool, "bottom": bottom_pool, "left": left_pool, "right": right_pool}


@pytest.mark.parametrize("direction", sorted(POOLS))
def test_pool_values_and_gradients_match_naive_loops(direction: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    x_naive = x.detach().clone().requires_grad_(True)
    fast, slow = POOLS[direction](x), reference_pool(x_naive, direction)
    torch.testing.assert_close(fast, slow, rtol=0, atol=0)
    weights = torch.randn_like(fast)
    (fast * weights).sum().backward()
    (slow * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_naive.grad, rtol=0, atol=1e-12)


def test_pools_pass_gradcheck() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    for pool in POOLS.values():
        assert torch.autograd.gradcheck(pool, (x,))


def test_pool_semantics_on_a_hand_made_map() -> None:
    x = torch.tensor([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0], [0.0, 6.0, 1.0]])[None, None]
    assert top_pool(x)[0, 0].tolist() == [[4, 6, 3], [4, 6, 3], [0, 6, 1]]
    assert bottom_pool(x)[0, 0].tolist() == [[1, 5, 2], [4, 5, 3], [4, 6, 3]]
    assert left_pool(x)[0, 0].tolist() == [[5, 5, 2], [4, 3, 3], [6, 6, 1]]
    assert right_pool(x)[0, 0].tolist() == [[1, 5, 5], [4, 4, 4], [0, 6, 6]]


def _cascade_by_formula(
    module: CascadeCornerPooling, x: torch.Tensor, first: str, second: str
) -> torch.Tensor:
    """Fig. 4c of arXiv:1904.08189, top-left: u1 = Left(conv(x)); v1 = Top(conv3x3(conv(x) + u1)); u2 = Top(conv(x));
    v2 = Left(conv3x3(conv(x) + u2)); then the tail on v1 + v2 (bottom-right mirrors with Bottom/Right)."""
    u1 = reference_pool(module.look_1(x), second)
    v1 = reference_pool(module.cascade_conv_1(module.conv_1(x) + u1), first)
    u2 = reference_pool(module.look_2(x), first)
    v2 = reference_pool(module.cascade_conv_2(module.conv_2(x) + u2), second)
    tail = module.tail
    merged = torch.relu(tail.pooled_bn(tail.pooled_conv(v1 + v2)) + tail.skip_bn(tail.skip_conv(x)))
    return tail.out_conv(merged)


@pytest.mark.parametrize(
    ("corner", "first", "second"), [("top_left", "top", "left"), ("bottom_right", "bottom", "right")]
)
def test_cascade_corner_pooling_equals_the_formula(corner: str, first: str, second: str) -> None:
    torch.manual_seed(2)
    module = CascadeCornerPooling(6, corner, pool_channels=4).double().eval()
    x = torch.randn(2, 6, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(module(x), _cascade_by_formula(module, x, first, second))


def test_center_pooling_equals_the_formula() -> None:
    torch.manual_seed(3)
    module = CenterPooling(5, pool_channels=3).double().eval()
    x = torch.randn(1, 5, 6, 8, dtype=torch.float64)
    column_max = reference_pool(reference_pool(module.column_conv(x), "top"), "bottom")
    row_max = reference_pool(reference_pool(module.row_conv(x), "left"), "right")
    # Bottom(Top(.)) is the maximum of the whole column, Right(Left(.)) of the whole row.
    features = module.column_conv(x)
    torch.testing.assert_close(column_max, features.amax(dim=2, keepdim=True).expand_as(features))
    tail = module.tail
    expected = tail.out_conv(
        torch.relu(tail.pooled_bn(tail.pooled_conv(column_max + row_max)) + tail.skip_bn(tail.skip_conv(x)))
    )
    with torch.no_grad():
        torch.testing.assert_close(module(x), expected)


def test_cascade_pooling_rejects_unknown_corner() -> None:
    with pytest.raises(ValueError, match="top_left"):
        CascadeCornerPooling(4, "top_right")  # type: ignore[arg-type]
