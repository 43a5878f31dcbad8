"""The zoo through mode=summary (published sizes), the unknown-name error and local pretrained weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from networks.classification import build_backbone, load_local_weights
from networks.classification.wide_resnet import wide_resnet
from visionsuite.errors import ConfigError
from visionsuite.pipeline import run_job

# (experiment, backbone, published parameters in millions, input size)
PUBLISHED_SIZES = [
    ("classify_cifar10", "resnet56", 0.86, 32),      # He et al. arXiv:1512.03385 Table 6
    ("classify_cifar10", "resnet110", 1.73, 32),     # He et al. arXiv:1512.03385 Table 6
    ("classify_cifar10", "vgg16_bn", 14.7, 32),      # Pruning from Scratch code (models/vgg.py)
    ("classify_cifar10", "wrn28_10", 36.5, 32),      # Zagoruyko & Komodakis arXiv:1605.07146 Table 5
    ("classify_imagenet", "resnet50", 25.6, 224),    # torchvision / arXiv:1512.03385
    ("classify_imagenet", "mobilenet_v2", 3.5, 224),  # torchvision / arXiv:1801.04381
]


@pytest.mark.parametrize("experiment,backbone,published,size", PUBLISHED_SIZES)
def test_summary_reproduces_the_published_sizes(make_config, capsys, experiment: str, backbone: str,
                                                published: float, size: int) -> None:
    run_job(make_config(f"experiment={experiment}", f"model/backbone={backbone}", "mode=summary"))
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    digits = len(str(published).split(".")[1])  # as many decimals as the published figure
    assert round(report["params_m"], digits) == published
    assert report["input_size"] == size
    assert report["madds_m"] > 0


def test_an_unknown_backbone_lists_the_known_ones(make_config) -> None:
    with pytest.raises(ConfigError, match="^model.net.name='resnet57' is not a backbone of the zoo; known backbones: "
                                          ".*resnet56.*wrn28_10"):
        run_job(make_config("experiment=classify_cifar10", "model.net.name=resnet57", "mode=summary"))


def test_wide_resnet_widths_follow_the_channel_list_and_multiplier() -> None:
    network = wide_resnet(10, 2, 7, channels=[8, 16, 32, 64], width_multiplier=0.5)
    assert network.fc.in_features == 32 and network.fc.out_features == 7
    assert network(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="^depth=27: .*6n \\+ 4"):
        wide_resnet(27, 10, 10)


def test_pretrained_weights_that_do_not_match_the_backbone_are_refused(tmp_path: Path, make_config) -> None:
    other = tmp_path / "resnet20.pth"
    torch.save(build_backbone("resnet20", 10).state_dict(), other)
    with pytest.raises(ValueError, match=r"^weights_path=.*resnet20\.pth does not fit MobileNetV2 as ImageNet weights: "
                                          r".*first `conv1\.weight`.*Pass ImageNet weights of this backbone"):
        load_local_weights(build_backbone("mobilenet_v2", 10), other)
    with pytest.raises(ConfigError, match=r"^model\.net\.weights_path=.*resnet20\.pth does not fit ResNet as ImageNet "
                                          r"weights: .*`conv1\.weight` "
                                          r"has shape \(16, 3, 3, 3\) but the network's `conv1\.weight` has \(64, 3, 7, 7\)"):
        run_job(make_config("experiment=classify_imagenet", f"model.net.weights_path={other}",
                            "mode=summary"))


def test_pretrained_weights_are_read_by_the_official_reader_and_checked_strictly(tmp_path: Path) -> None:
    source = build_backbone("mobilenet_v2", 1000, width_multiplier=0.25)
    wrapped = tmp_path / "mobilenet_v2.pth.tar"  # a DataParallel training checkpoint of the ImageNet example scripts
    torch.save({"epoch": 90, "arch": "mobilenet_v2", "best_acc1": 71.9,
                "state_dict": {f"module.{key}": value for key, value in source.state_dict().items()}}, wrapped)
    loaded = load_local_weights(build_backbone("mobilenet_v2", 1000, width_multiplier=0.25), wrapped)
    assert all(torch.equal(value, source.state_dict()[key]) for key, value in loaded.state_dict().items())

    headless = tmp_path / "headless.pth"  # skip_classifier also accepts a file without the head
    torch.save({key: value for key, value in source.state_dict().items() if not key.startswith("classifier.")},
               headless)
    fresh = build_backbone("mobilenet_v2", 10, width_multiplier=0.25)
    initial_head = fresh.classifier[-1].weight.clone()
    load_local_weights(fresh, headless, skip_classifier=True)
    assert torch.equal(fresh.classifier[-1].weight, initial_head)
    assert torch.equal(fresh.features[1].conv[0][0].weight, source.features[1].conv[0][0].weight)
    with pytest.raises(ValueError, match=r"no official weight, first `classifier\.1\.weight`"):
        load_local_weights(build_backbone("mobilenet_v2", 1000, width_multiplier=0.25), headless)

    stretched = source.state_dict()  # a trunk entry of another shape is an error even with skip_classifier
    stretched["features.0.0.weight"] = torch.zeros(9, 3, 3, 3)
    torch.save(stretched, tmp_path / "stretched.pth")
    with pytest.raises(ValueError, match=r"`features\.0\.0\.weight` has shape \(9, 3, 3, 3\)"):
        load_local_weights(build_backbone("mobilenet_v2", 10, width_multiplier=0.25), tmp_path / "stretched.pth",
                           skip_classifier=True)
    (tmp_path / "broken.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"^weights_path=.*broken\.pth cannot be read as a PyTorch file"):
        load_local_weights(fresh, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"^weights_path=.*absent\.pth: no such file.*torch\.save"):
        load_local_weights(fresh, tmp_path / "absent.pth")


def test_matching_pretrained_weights_load_with_a_new_head(tmp_path: Path) -> None:
    source = build_backbone("mobilenet_v2", 1000, width_multiplier=0.25)
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(source.state_dict(), path)
    loaded = build_backbone("mobilenet_v2", 10, width_multiplier=0.25, weights_path=str(path))
    assert torch.equal(loaded.features[0][0].weight, source.features[0][0].weight)
    assert loaded.classifier[-1].out_features == 10
