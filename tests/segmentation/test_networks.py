"""Invariants of the thickened 2D network, its plain 2D baseline, the 3D U-Net, the loss and the Dice metric."""

from __future__ import annotations

import inspect

import pytest
import torch
from torchmetrics.functional.segmentation import dice_score

from lightning_modules.segmentation import VolumeSegmenter
from metrics.segmentation import CaseDice, dice_per_class
from networks.segmentation import ThickenedUNet2D, UNet3D, VolumeInferer, plain_unet2d, thickened_unet2d
from networks.segmentation.losses import DiceCrossEntropyLoss, soft_dice_loss
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build


@pytest.mark.parametrize("fusion_depth", [1, 2, 3])
def test_thickened_network_segments_the_centre_slice(fusion_depth: int) -> None:
    net = thickened_unet2d(3, context_slices=2, channels=(4, 8, 16), fusion_depth=fusion_depth)
    assert net(torch.randn(2, 5, 16, 16)).shape == (2, 3, 16, 16)


def test_slices_are_encoded_separately_with_shared_weights_before_fusion() -> None:
    torch.manual_seed(0)
    net = thickened_unet2d(2, context_slices=1, channels=(4, 8), fusion_depth=1).eval()
    captured = []
    net.encoder[0].register_forward_hook(lambda _m, _i, out: captured.append(out))
    slices = torch.randn(1, 3, 8, 8)
    changed = slices.clone()
    changed[0, 0] = torch.randn(8, 8)
    net(slices)
    net(changed)
    before, after = captured[0].reshape(1, 3, 4, 8, 8), captured[1].reshape(1, 3, 4, 8, 8)
    assert not torch.allclose(before[0, 0], after[0, 0])
    assert torch.allclose(before[0, 1:], after[0, 1:])  # slice 1 and 2 untouched: no fusion yet
    # shared weights: the same slice in another position gives the same pre-fusion features
    swapped = slices[:, [2, 1, 0]]
    net(swapped)
    assert torch.allclose(captured[2].reshape(1, 3, 4, 8, 8)[0, 2], before[0, 0], atol=1e-6)


def test_highway_connections_reach_the_prediction_layer() -> None:
    net = thickened_unet2d(3, context_slices=2, channels=(4, 8, 16), fusion_depth=2, highway_channels=3)
    assert net.prediction[0][0].in_channels == 4 + 5 * 3  # decoder output + 3 channels of each of 5 slices
    without = ThickenedUNet2D(3, 2, (4, 8, 16), fusion_depth=2, highway=False)
    assert without.prediction[0][0].in_channels == 4


def test_plain_network_fuses_every_slice_at_the_first_convolution() -> None:
    net = plain_unet2d(3, context_slices=3, channels=(4, 8))
    assert net.encoder[0][0][0][0].in_channels == 7 and len(net.fusions) == 0 and net.highway is None
    assert net(torch.randn(1, 7, 8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="takes 7 slices"):
        net(torch.randn(1, 5, 8, 8))


def test_bad_network_settings() -> None:
    with pytest.raises(ValueError, match="^highway=true needs fusion_depth >= 1"):
        ThickenedUNet2D(3, 2, (4, 8), fusion_depth=0, highway=True)
    with pytest.raises(ValueError, match="^fusion_depth must be 0 .* to 2 .*, got 5"):
        ThickenedUNet2D(3, 2, (4, 8), fusion_depth=5)
    with pytest.raises(ValueError, match="^channels must list at least two"):
        UNet3D(3, channels=(4,))
    with pytest.raises(ValueError, match=r"^overlap must be in \[0, 1\)"):
        VolumeInferer(overlap=1.0)


def test_the_module_receives_its_network_built_and_repeats_none_of_its_arguments() -> None:
    arguments = inspect.signature(VolumeSegmenter).parameters
    network_arguments = set(inspect.signature(ThickenedUNet2D).parameters) | set(inspect.signature(UNet3D).parameters)
    assert arguments["net"].default is inspect.Parameter.empty  # no second way to build the network
    assert set(arguments) & network_arguments == {"num_classes"} and len(arguments) <= 12


@pytest.mark.parametrize(("experiment", "fusion_depth"), [("thickened2d_demo", 1), ("plain2d_demo", 0),
                                                          ("unet3d_demo", None), ("thickened2d_msd_pancreas", 2)])
def test_each_model_config_injects_its_network(make_config, experiment: str, fusion_depth: int | None) -> None:
    module = build(make_config(f"experiment={experiment}").model, "model")
    assert isinstance(module.net, UNet3D if fusion_depth is None else ThickenedUNet2D)
    assert isinstance(module.inference, VolumeInferer) and module.net.num_classes == module.hparams.num_classes == 3
    if fusion_depth is not None:
        assert module.net.fusion_depth == fusion_depth and (module.net.highway is None) == (fusion_depth == 0)


def test_a_slice_count_other_than_the_networks_is_named_by_both_keys(make_config) -> None:
    module = build(make_config("experiment=thickened2d_demo").model, "model")
    batch = {"image": torch.zeros(2, 3, 16, 16), "label": torch.zeros(2, 16, 16, dtype=torch.long)}
    with pytest.raises(ConfigError, match=r"takes 5 slices \(model\.net\.context_slices=2\) but got 3; set "
                                          r"data\.context_slices"):
        module.training_step(batch, 0)


@pytest.mark.parametrize(("override", "message"), [
    ("model.net.fusion_depth=7", r"model\.net\.fusion_depth must be 0 \(fuse at the first convolution\) to 3"),
    ("model.net.channels=[8]", r"model\.net\.channels must list at least two encoder stages"),
    ("model.inference.overlap=1.0", r"model\.inference\.overlap must be in \[0, 1\), got 1\.0"),
    ("model.dice_weight=0", r"model\.dice_weight and ce_weight must be >= 0 and not both 0"),
])
def test_a_bad_setting_is_named_by_its_config_key(make_config, override: str, message: str) -> None:
    cfg = make_config("experiment=thickened2d_demo", override, *(["model.ce_weight=0"] if "weight" in override else []))
    with pytest.raises(ConfigError, match=f"^{message}"):
        build(cfg.model, "model")


def test_unet3d_shapes() -> None:
    net = UNet3D(3, channels=(4, 8, 16))
    assert net.divisor == 4 and net(torch.randn(1, 1, 8, 8, 4)).shape == (1, 3, 8, 8, 4)


def test_dice_matches_torchmetrics_and_skips_classes_absent_from_both() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (10, 10, 6), generator=generator)
    prediction = torch.randint(0, 3, (10, 10, 6), generator=generator)
    ours = dice_per_class(prediction, target, 3)
    reference = dice_score(prediction[None], target[None], num_classes=3, include_background=False, average="none",
                           input_format="index")
    assert torch.allclose(ours.float(), reference.reshape(-1).float(), atol=1e-6)
    assert torch.equal(dice_per_class(target, target, 3), torch.ones(2, dtype=torch.float64))
    empty = dice_per_class(torch.zeros(4, 4, 4), torch.zeros(4, 4, 4), 3)
    assert empty.isnan().all()
    metric = CaseDice(3)
    metric.update(target, target, 0)
    metric.update(torch.zeros_like(target), (target == 1).long(), 1)  # vessel missed, no tumour anywhere
    values = metric.compute()
    assert values["per_case"].shape == (2, 2) and values["case_index"].tolist() == [0, 1]
    assert values["per_class"].tolist() == [0.5, 1.0] and values["mean"] == 0.75


def test_dice_cross_entropy_loss() -> None:
    target = torch.randint(0, 3, (2, 8, 8))
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(perfect, target) < 1e-4
    loss = DiceCrossEntropyLoss(dice_weight=0.5, ce_weight=2.0)(torch.randn(2, 3, 8, 8), target)
    assert torch.allclose(loss["loss"], 0.5 * loss["dice_loss"] + 2.0 * loss["ce_loss"])
    with pytest.raises(ValueError, match="^dice_weight and ce_weight"):
        DiceCrossEntropyLoss(0.0, 0.0)


def test_case_dice_of_a_single_case_and_a_single_class() -> None:
    metric = CaseDice(2)
    metric.update(torch.ones(3, 3, 3), torch.ones(3, 3, 3), 4)
    values = metric.compute()  # torchmetrics squeezes one-element tensors; the module reshapes them back
    assert values["per_case"].reshape(-1, 1).shape == (1, 1) and values["case_index"].reshape(-1).tolist() == [4]
