"""The Hourglass backbone and the CenterNet heads: shapes, stacks, intermediate supervision, initial bias."""

from __future__ import annotations

import pytest
import torch

from networks.detection.centernet import (
    HEATMAP_BIAS,
    OUTPUT_NAMES,
    CenterNet,
    centernet52,
    centernet104,
    centernet_tiny,
)
from networks.detection.hourglass import HourglassModule, StackedHourglass, output_size


def test_output_stride_is_four_for_the_paper_input() -> None:
    assert output_size(511) == 128
    assert output_size(128) == 32
    backbone = StackedHourglass(
        stacks=1, channels=(8, 8, 8), blocks=(1, 1, 1), stem_channels=4, head_channels=8
    )
    assert backbone(torch.zeros(1, 3, 63, 63))[0].shape == (1, 8, output_size(63), output_size(63))


def test_hourglass_recursion_depth_and_blocks() -> None:
    module = HourglassModule(channels=(8, 12, 16, 20), blocks=(2, 1, 1, 3))
    depth, level = 0, module
    while isinstance(level, HourglassModule):
        depth, level = depth + 1, level.inner
    assert depth == 3
    assert len(level) == 3  # blocks at the bottom
    assert len(module.upper) == 2 and len(module.down) == 2 and len(module.up) == 2
    assert module.down[0].conv1.stride == (2, 2)  # down = stride-2 residual, no max pooling
    x = torch.randn(2, 8, 16, 16)
    assert module(x).shape == x.shape


def test_training_returns_every_stack_and_eval_the_last() -> None:
    torch.manual_seed(0)
    net = CenterNet(
        num_classes=4,
        stacks=2,
        channels=(8, 8, 8),
        blocks=(1, 1, 1),
        stem_channels=4,
        head_channels=8,
        pool_channels=4,
    )
    images = torch.randn(2, 3, 32, 40)
    net.train()
    outputs = net(images)
    assert len(outputs) == 2
    shapes = {
        "tl_heatmap": 4,
        "br_heatmap": 4,
        "ct_heatmap": 4,
        "tl_embedding": 1,
        "br_embedding": 1,
        "tl_offset": 2,
        "br_offset": 2,
        "ct_offset": 2,
    }
    for stack in outputs:
        assert set(stack) == set(OUTPUT_NAMES)
        for name, channels in shapes.items():
            assert stack[name].shape == (2, channels, 8, 10)
    sum(value.sum() for stack in outputs for value in stack.values()).backward()
    assert all(p.grad is not None for p in net.heads[0].parameters())  # the first stack is supervised too
    net.eval()
    with torch.no_grad():
        assert len(net(images)) == 1


def test_heatmap_heads_start_at_probability_one_tenth() -> None:
    net = centernet_tiny(num_classes=3)
    for name in ("tl", "br", "ct"):
        assert torch.all(net.heads[0].heatmaps[name][-1].bias == HEATMAP_BIAS)
    assert abs(torch.sigmoid(torch.tensor(HEATMAP_BIAS)).item() - 0.1) < 1e-3


@pytest.mark.slow
def test_paper_models_parameter_counts() -> None:
    # CenterNet-104 has about 210M parameters, CenterNet-52 about 105M (one stack less).
    big, small = centernet104(80), centernet52(80)
    count = lambda model: sum(p.numel() for p in model.parameters()) / 1e6  # noqa: E731
    assert big.stacks == 2 and small.stacks == 1
    assert 200 < count(big) < 220 and 100 < count(small) < 110


@pytest.mark.parametrize("override,message", [
    ("+model.net.stacks=0", r"^model\.net\.stacks must be >= 1, got 0$"),
    ("+model.net.channels=[8]", r"^model\.net\.channels \[8\] and blocks \[1, 1, 1, 1\] need the same length"),
    ("model.net.num_classes=0", r"^model\.net\.num_classes must be >= 1, got 0$"),
])
def test_a_network_argument_error_names_its_config_key(make_config, override: str, message: str) -> None:
    # The network checks its own arguments (ValueError naming the argument); the user reads the key path.
    from visionsuite.errors import ConfigError
    from visionsuite.instantiate import build

    with pytest.raises(ConfigError, match=message):
        build(make_config("experiment=centernet_shapes", override).model, "model")
