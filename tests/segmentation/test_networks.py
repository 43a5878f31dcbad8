"""Invariants of the thickened 2D network, its plain 2D baseline, the MONAI 3D baselines (UNet, DynUNet and its
nnU-Net plan), the loss and the Dice metric (the same numbers as the suite's own implementations before MONAI)."""

from __future__ import annotations

import inspect

import pytest
import torch
from torchmetrics.functional.segmentation import dice_score

from lightning_modules.segmentation import VolumeSegmenter
from metrics.segmentation import CaseDice, dice_per_class
from networks.segmentation import (
    DynUNet3D,
    ThickenedUNet2D,
    UNet3D,
    VolumeInferer,
    nnunet_kernels_and_strides,
    plain_unet2d,
    thickened_unet2d,
)
from visionsuite.checkpoint_files import CheckpointFormatError, check_format, checkpoint_format
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
    with pytest.raises(ValueError, match="^channels must list positive"):
        DynUNet3D(3, (16, 16, 8), (1, 1, 1), channels=[])
    with pytest.raises(ValueError, match=r"^overlap must be in \[0, 1\)"):
        VolumeInferer(overlap=1.0)
    with pytest.raises(ValueError, match="^mode must be one of constant, gaussian"):
        VolumeInferer(mode="median")


def test_the_module_receives_its_network_built_and_repeats_none_of_its_arguments() -> None:
    arguments = inspect.signature(VolumeSegmenter).parameters
    network_arguments = set().union(*(inspect.signature(net).parameters for net in (ThickenedUNet2D, UNet3D, DynUNet3D)))
    assert arguments["net"].default is inspect.Parameter.empty  # no second way to build the network
    assert set(arguments) & network_arguments == {"num_classes"} and len(arguments) <= 12


@pytest.mark.parametrize(("experiment", "fusion_depth"), [("thickened2d_demo", 1), ("plain2d_demo", 0),
                                                          ("unet3d_demo", "unet"), ("dynunet3d_demo", "dynunet"),
                                                          ("thickened2d_msd_pancreas", 2)])
def test_each_model_config_injects_its_network(make_config, experiment: str, fusion_depth: int | str) -> None:
    module = build(make_config(f"experiment={experiment}").model, "model")
    assert isinstance(module.net, {"unet": UNet3D, "dynunet": DynUNet3D}.get(fusion_depth, ThickenedUNet2D))
    assert isinstance(module.inference, VolumeInferer) and module.net.num_classes == module.hparams.num_classes == 3
    if isinstance(fusion_depth, int):
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
    ("model.inference.mode=median", r"model\.inference\.mode must be one of constant, gaussian"),
    ("model.loss.lambda_dice=-1", r"model\.loss\.lambda_dice should be no less than 0"),
])
def test_a_bad_setting_is_named_by_its_config_key(make_config, override: str, message: str) -> None:
    cfg = make_config("experiment=thickened2d_demo", override)
    with pytest.raises(ConfigError, match=f"^{message}"):
        build(cfg.model, "model")


def test_unet3d_is_monais_unet_at_the_configs_widths(make_config) -> None:
    net = UNet3D(3, channels=(4, 8, 16))
    assert net.divisor == 4 and net(torch.randn(1, 1, 8, 8, 4)).shape == (1, 3, 8, 8, 4)
    module = build(make_config("experiment=unet3d_msd_hepatic_vessel").model, "model")
    assert list(module.net.channels) == [32, 64, 128, 256] and list(module.net.strides) == [2, 2, 2]  # 2D widths


@pytest.mark.parametrize(("patch_size", "spacing", "kernels", "strides"), [
    # MSD Task08 (hepatic vessel): isotropic enough, five poolings, the last one in-plane only (Z at 4 voxels)
    ((192, 192, 64), (0.8, 0.8, 1.5), [[3, 3, 3]] * 6, [[1, 1, 1], *[[2, 2, 2]] * 4, [2, 2, 1]]),
    # MSD Task07 (pancreas): 2.5 mm slices, more than twice 0.8 mm: in-plane only, 1-voxel kernels along Z first
    ((224, 224, 40), (0.8, 0.8, 2.5), [[3, 3, 1], *[[3, 3, 3]] * 5],
     [[1, 1, 1], [2, 2, 1], *[[2, 2, 2]] * 3, [2, 2, 1]]),
    ((32, 32, 16), (1.0, 1.0, 2.0), [[3, 3, 3]] * 4, [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 1]]),  # the demo
])
def test_nnunet_plan_of_each_task(patch_size, spacing, kernels, strides) -> None:
    assert nnunet_kernels_and_strides(patch_size, spacing) == (kernels, strides)


def test_dynunet_follows_its_plan_and_rejects_patches_it_cannot_halve(make_config) -> None:
    net = DynUNet3D(3, (32, 32, 16), (1.0, 1.0, 2.0), channels=(4, 8)).eval()
    assert net.divisor == (8, 8, 4) and net.filters == [4, 8, 8, 8]
    assert net(torch.randn(1, 1, 32, 32, 16)).shape == (1, 3, 32, 32, 16)
    cfg = make_config("experiment=dynunet3d_msd_pancreas")
    assert list(cfg.model.net.patch_size) == [224, 224, 40] and list(cfg.model.net.spacing) == [0.8, 0.8, 2.5]
    with pytest.raises(ValueError, match=r"^patch_size \[36, 36, 16\] cannot be halved at the level of \[9, 9, 4\]"):
        nnunet_kernels_and_strides((36, 36, 16), (1, 1, 1))
    with pytest.raises(ValueError, match=r"^patch_size \[8, 8, 4\] at spacing \[1, 1, 1\] allows 1 downsampling"):
        DynUNet3D(3, [8, 8, 4], [1, 1, 1])
    with pytest.raises(ValueError, match="^spacing must be three positive"):
        nnunet_kernels_and_strides((16, 16, 8), (1, 1))


# --- Dice and loss: the numbers of the suite's own implementations before MONAI / torchmetrics replaced them.
def _reference_dice_per_class(prediction: torch.Tensor, target: torch.Tensor, num_classes: int) -> list[float]:
    """The former metric: 2|P∩G| / (|P| + |G|) per foreground class, NaN when both are empty."""
    scores = []
    for value in range(1, num_classes):
        predicted, expected = prediction == value, target == value
        denominator = int(predicted.sum() + expected.sum())
        scores.append(2.0 * int((predicted & expected).sum()) / denominator if denominator else float("nan"))
    return scores


def test_dice_gives_the_former_numbers_and_skips_classes_absent_from_both() -> None:
    generator = torch.Generator().manual_seed(2)
    prediction = torch.randint(0, 3, (16, 12, 8), generator=generator)
    target = torch.randint(0, 3, (16, 12, 8), generator=generator)
    vessel_only = (target == 1).long()
    for ours, former in [(dice_per_class(prediction, target, 3), [0.296, 0.32844576]),  # former outputs
                         (dice_per_class(prediction, vessel_only, 3), [0.296, 0.0]),  # predicted, absent: 0
                         (dice_per_class(vessel_only, vessel_only, 3), [1.0, float("nan")])]:  # both empty: NaN
        assert torch.allclose(ours, torch.tensor(former, dtype=torch.float64), atol=1e-7, equal_nan=True)
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        prediction, target = (torch.randint(0, 3, (10, 10, 6), generator=generator) for _ in range(2))
        reference = torch.tensor(_reference_dice_per_class(prediction, target, 3), dtype=torch.float64)
        assert torch.allclose(dice_per_class(prediction, target, 3), reference, atol=1e-7)
        assert torch.allclose(dice_per_class(prediction, target, 3).float(), dice_score(
            prediction[None], target[None], num_classes=3, include_background=False, average="none",
            input_format="index").reshape(-1))
    metric = CaseDice(3)
    metric.update(target, target, 0)
    metric.update(torch.zeros_like(target), (target == 1).long(), 1)  # vessel missed, no tumour anywhere
    values = metric.compute()
    assert values["per_case"].shape == (2, 2) and values["case_index"].tolist() == [0, 1]
    assert values["per_class"].tolist() == [0.5, 1.0] and values["mean"] == 0.75


def _reference_dice_ce(logits: torch.Tensor, target: torch.Tensor, dice_weight: float, ce_weight: float) -> float:
    """The former loss: dice_weight x (1 - mean over foreground classes of the batch's soft Dice, smoothed by 1e-5)
    + ce_weight x cross-entropy."""
    probabilities = logits.softmax(dim=1)
    one_hot = torch.nn.functional.one_hot(target, logits.shape[1]).movedim(-1, 1).float()
    dims = [0, *range(2, logits.dim())]
    dice = (2 * (probabilities * one_hot).sum(dims) + 1e-5) / (probabilities.sum(dims) + one_hot.sum(dims) + 1e-5)
    cross_entropy = torch.nn.functional.cross_entropy(logits, target)
    return float(dice_weight * (1 - dice[1:].mean()) + ce_weight * cross_entropy)


def test_the_configs_dice_ce_loss_gives_the_former_numbers(make_config) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 12, 10, 6, generator=generator)
    target = torch.randint(0, 2, (2, 12, 10, 6), generator=generator)
    target[0, :4, :4, :3] = 2
    absent = torch.randint(0, 2, (2, 12, 10, 6), generator=torch.Generator().manual_seed(1))  # no class 2
    cases = [(1.0, 1.0, target, 2.1009119), (0.5, 2.0, target, 3.0516241), (1.0, 1.0, absent, 2.1369691)]
    for dice_weight, ce_weight, labels, former in cases:
        cfg = make_config("experiment=thickened2d_demo", f"model.loss.lambda_dice={dice_weight}",
                          f"model.loss.lambda_ce={ce_weight}")
        loss = build(cfg.model.loss, "model.loss")(logits, labels[:, None])
        assert abs(float(loss) - former) < 1e-5
        assert abs(float(loss) - _reference_dice_ce(logits, labels, dice_weight, ce_weight)) < 1e-5
    perfect = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float() * 50
    assert float(build(cfg.model.loss, "model.loss").dice(perfect, target[:, None])) < 1e-4


def test_case_dice_of_a_single_case_and_a_single_class() -> None:
    metric = CaseDice(2)
    metric.update(torch.ones(3, 3, 3), torch.ones(3, 3, 3), 4)
    values = metric.compute()  # torchmetrics squeezes one-element tensors; the module reshapes them back
    assert values["per_case"].reshape(-1, 1).shape == (1, 1) and values["case_index"].reshape(-1).tolist() == [4]


def test_a_checkpoint_of_the_former_3d_unet_stops_with_the_format_message(make_config, tmp_path) -> None:
    module = build(make_config("experiment=unet3d_demo").model, "model")
    former = {"state_dict": {"net.encoder.0.0.0.0.weight": torch.zeros(8, 1, 3, 3, 3)},
              "visionsuite": {"format": 1, "module": "VolumeSegmenter", "visionsuite": "0.1.0"}}
    with pytest.raises(CheckpointFormatError, match=r"checkpoint format 1 .* reads format 2 \(format 2: the 3D U-Net "
                                                    r"baseline is MONAI's UNet"):
        check_format(former, tmp_path / "last.ckpt", module)
    keys = list(module.state_dict())
    assert "net.model.0.conv.unit0.conv.weight" in keys  # MONAI's layout
    assert not any(key.startswith("loss.") for key in keys)  # the loss holds no weights


def test_a_checkpoint_of_a_2d_network_keeps_its_format(make_config, tmp_path) -> None:
    """The slice networks' layout did not change: their format-1 checkpoints still load."""
    module = build(make_config("experiment=thickened2d_demo").model, "model")
    written = {"state_dict": {}, "visionsuite": {"format": 1, "module": "VolumeSegmenter", "visionsuite": "0.1.0"}}
    check_format(written, tmp_path / "last.ckpt", module)  # no error
    assert checkpoint_format(module) == 1
    assert checkpoint_format(build(make_config("experiment=dynunet3d_demo").model, "model")) == 2
