"""The re-ID embedding networks, flip-averaged L2-normalised test features and MCNL's learning-rate schedule."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.reid import ReIDModule
from networks.reid.embedding import ReIDEmbedding, reduced_resnet_trunk, resnet50_trunk
from networks.reid.losses import MCNLLoss
from networks.reid.schedule import constant_then_exponential_decay


def test_resnet50_last_stride_one_gives_2048_d_features_from_twice_larger_maps() -> None:
    trunk = resnet50_trunk(last_stride=1).eval()
    with torch.no_grad():
        maps = trunk(torch.zeros(1, 3, 64, 32))
        features = ReIDEmbedding(trunk)(torch.zeros(2, 3, 64, 32))
    assert maps.shape == (1, 2048, 4, 2)  # stride 16 instead of 32
    assert features.shape == (2, 2048)


def test_reduced_trunk_and_its_weights_error() -> None:
    net = ReIDEmbedding(reduced_resnet_trunk(widths=(8, 16, 24, 32)))
    assert net(torch.zeros(2, 3, 64, 32)).shape == (2, 32)
    with pytest.raises(ValueError, match="^weights_path must be None"):
        reduced_resnet_trunk(weights_path="imagenet.pth")
    with pytest.raises(ValueError, match="^widths"):
        reduced_resnet_trunk(widths=(8, 16), blocks=(1,))


def test_test_features_are_flip_averaged_and_normalised() -> None:
    torch.manual_seed(0)
    module = ReIDModule(ReIDEmbedding(reduced_resnet_trunk(widths=(8, 8, 8, 8))), MCNLLoss()).eval()
    images = torch.randn(3, 3, 32, 16)
    with torch.no_grad():
        features = module.test_features(images)
        expected = (module.net(images) + module.net(images.flip(3))) / 2
    torch.testing.assert_close(features.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(features, torch.nn.functional.normalize(expected, dim=1))


def test_official_schedule_is_constant_to_epoch_100_then_decays_to_2e_7() -> None:
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=2e-4)
    schedule = constant_then_exponential_decay(optimizer)
    rates = []
    for _ in range(200):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == rates[99] == pytest.approx(2e-4)
    assert rates[100] < 2e-4 and all(a > b for a, b in zip(rates[100:], rates[101:], strict=False))
    assert rates[199] == pytest.approx(2e-4 * 0.001 ** (100 / 101))  # ~2.1e-7
