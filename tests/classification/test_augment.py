"""The augmentation toolkit: policies on the real loaders (CIFAR pickles, digits), batch mixing, bad names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.augment import POLICIES, Augmentation, AugmentContext
from datamodules.cifar import CIFARDataModule
from datamodules.digits import DigitsDataModule
from datamodules.imagenet import ImageNetDataModule
from datamodules.transforms import Cutout, Lighting
from datamodules.writers import write_image_folder
from datamodules.writers.cifar import write_cifar10
from visionsuite.errors import ConfigError


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, num_train=40, num_test=10)
    return root


def first_batch(datamodule) -> tuple:  # noqa: ANN001
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader()))


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_runs_on_cifar_pickles(cifar_dir: Path, policy: str) -> None:
    datamodule = CIFARDataModule("cifar10", cifar_dir, batch_size=8, augment=policy)
    images, targets = first_batch(datamodule)
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    mixed = any(op in POLICIES[policy] for op in ("mixup", "cutmix"))
    assert targets.shape == ((8, 10) if mixed else (8,))


@pytest.mark.parametrize("ops", [["autoaugment", "cutout"], ["randaugment"], ["trivialaugment", "mixup"]])
def test_ops_compose_on_digit_tensors(ops: list[str]) -> None:
    images, targets = first_batch(DigitsDataModule(batch_size=8, augment_ops=ops,
                                                   augment_options={"cutout_length": 8}))
    assert images.shape == (8, 3, 32, 32) and torch.isfinite(images).all()
    assert targets.ndim == (2 if "mixup" in ops else 1)


def test_ops_run_in_the_canonical_order_whatever_the_list_order() -> None:
    context = AugmentContext(32, (0.5,) * 3, (0.25,) * 3)
    steps = Augmentation(("cutout", "autoaugment", "flip", "crop")).image_transform(context).transforms
    names = [type(step).__name__ for step in steps]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "AutoAugment", "ToImage", "ToDtype", "Normalize", "Cutout"]
    assert isinstance(steps[-1], Cutout)  # the suite's one Cutout, reused


def test_no_augmentation_is_the_evaluation_transform(cifar_dir: Path) -> None:
    datamodule = CIFARDataModule("cifar10", cifar_dir, batch_size=4, augment="none")
    datamodule.setup("fit")
    raw_image, _ = datamodule.train_dataset.dataset[0]
    expected = datamodule.eval_transform()(raw_image)
    assert torch.allclose(datamodule.train_dataset[0][0], expected, atol=1e-6)


def test_mixup_and_cutmix_give_soft_targets_of_the_batch_labels() -> None:
    torch.manual_seed(0)
    collate = Augmentation(("mixup", "cutmix"), ).collate(num_classes=10)
    samples = [(torch.rand(3, 8, 8), label) for label in (1, 2, 3, 4)]
    images, targets = collate(samples)
    assert images.shape == (4, 3, 8, 8)
    assert torch.allclose(targets.sum(dim=1), torch.ones(4))
    assert set(targets.nonzero()[:, 1].tolist()) <= {1, 2, 3, 4}


def test_paired_views_carry_two_augmentations_of_the_same_image() -> None:
    datamodule = DigitsDataModule(batch_size=4, augment="none", paired_augment="autoaugment_cutout",
                                  augment_options={"cutout_length": 8})
    clean, targets, augmented = first_batch(datamodule)
    assert clean.shape == augmented.shape and targets.shape == (4,)
    raw, label = datamodule.train_dataset.dataset[0]
    view, target, _ = datamodule.train_dataset[0]
    assert target == label and torch.allclose(view, datamodule.eval_transform()(raw))


def test_an_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="data.augment='autoaugmnt'.*known policies: none, standard"):
        DigitsDataModule(augment="autoaugmnt")


def test_an_unknown_op_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown op.*'rotate'.*known ops: crop, flip"):
        DigitsDataModule(augment_ops=["crop", "rotate"])


@pytest.mark.parametrize("op,alpha", [("mixup", 0.0), ("cutmix", -1.0)])
def test_mixing_alpha_must_be_positive(op: str, alpha: float) -> None:
    with pytest.raises(ConfigError, match=f"{op}_alpha={alpha}.*must be > 0"):
        DigitsDataModule(augment_ops=[op], augment_options={f"{op}_alpha": alpha})


def test_unknown_option_and_paired_mixing_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown keys \\['cutout_size'\\]"):
        DigitsDataModule(augment="cutout", augment_options={"cutout_size": 8})
    with pytest.raises(ConfigError, match="paired_augment cannot be combined with MixUp"):
        DigitsDataModule(augment="mixup", paired_augment="autoaugment")


def test_the_command_line_reaches_the_toolkit(make_config) -> None:
    from visionsuite.instantiate import build

    cfg = make_config("experiment=classify_digits", "data.augment_ops=[crop,cutmix]",
                      "data.augment_options.cutmix_alpha=0.5")
    datamodule = build(cfg.data, "data")
    assert datamodule.augmentation.ops == ("crop", "flip", "cutmix")
    assert datamodule.augmentation.options.cutmix_alpha == 0.5


def test_lighting_adds_the_pca_colour_shift_of_its_draw() -> None:
    image = torch.rand(3, 8, 8)
    torch.manual_seed(5)
    shifted = Lighting(0.1)(image)
    torch.manual_seed(5)
    alpha = torch.randn(3) * 0.1
    expected = torch.tensor(Lighting.EIGENVECTORS) @ (alpha * torch.tensor(Lighting.EIGENVALUES))
    assert torch.allclose(shifted - image, expected[:, None, None].expand(3, 8, 8), atol=1e-7)
    assert Lighting(0.0)(image) is image
    with pytest.raises(ValueError, match="RGB"):
        Lighting(0.1)(torch.rand(1, 8, 8))


def test_the_imagenet_lighting_policy_builds_the_official_recipe() -> None:
    context = AugmentContext(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), crop="resized")
    augmentation = Augmentation.from_config("imagenet_lighting", None, {"crop_scale_min": 0.25, "color_jitter": 0.4,
                                                                         "lighting_std": 0.1})
    steps = augmentation.image_transform(context).transforms
    names = [type(step).__name__ for step in steps]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToImage", "ToDtype", "Lighting",
                     "Normalize"]
    assert steps[0].scale == (0.25, 1.0)
    assert steps[2].brightness == steps[2].contrast == steps[2].saturation == (0.6, 1.4) and steps[2].hue is None
    assert steps[5].std == 0.1
    default_crop = Augmentation(("crop",)).image_transform(context).transforms[0]
    assert default_crop.scale == (0.08, 1.0)  # torchvision's default (ResNet-50)


def test_imagenet_lighting_on_the_imagefolder_loader(tmp_path: Path) -> None:
    data_dir = write_image_folder(tmp_path / "imagenet", num_classes=2, images_per_class=4, image_size=48)
    datamodule = ImageNetDataModule(data_dir, num_classes=2, image_size=32, resize_size=36, batch_size=4,
                                    num_workers=0, augment="imagenet_lighting",
                                    augment_options={"crop_scale_min": 0.25})
    images, targets = first_batch(datamodule)
    assert images.shape == (4, 3, 32, 32) and torch.isfinite(images).all() and targets.shape == (4,)


@pytest.mark.parametrize("options,key", [({"crop_scale_min": 0.0}, "crop_scale_min"),
                                         ({"lighting_std": -1.0}, "lighting_std"),
                                         ({"color_jitter": -0.1}, "color_jitter")])
def test_bad_colour_and_crop_options_name_their_key(options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"data.augment_options.{key}"):
        Augmentation.from_config("imagenet_lighting", None, options)


def test_lighting_refuses_images_that_are_not_rgb() -> None:
    grey = AugmentContext(28, (0.5,), (0.25,), input_kind="tensor")
    with pytest.raises(ConfigError, match="lighting op needs RGB"):
        Augmentation(("lighting",)).image_transform(grey)
