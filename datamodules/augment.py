"""The augmentation toolkit of the classification DataModules: named policies and composable ops.

``data.augment=<policy>`` picks a named list of ops (:data:`POLICIES`); ``data.augment_ops=[...]`` lists ops
directly (added after the policy's when both are given). Ops (torchvision's ``transforms.v2`` wherever it has
them; only Cutout is ours, :class:`datamodules.transforms.Cutout`):

* ``crop``: random crop of the padded image (CIFAR / digits: pad ``crop_padding``, crop ``image_size``) or
  ``RandomResizedCrop`` (ImageNet), the standard augmentation;
* ``flip``: random horizontal flip (skipped for data that is not mirror-symmetric, e.g. digits);
* ``autoaugment``: AutoAugment (arXiv:1805.09501) with the dataset's policy (CIFAR10 or IMAGENET; override
  with ``augment_options.autoaugment_policy``);
* ``randaugment``: RandAugment (arXiv:1909.13719), ``randaugment_num_ops`` ops of ``randaugment_magnitude``;
* ``trivialaugment``: TrivialAugment (arXiv:2103.10158), ``TrivialAugmentWide``;
* ``colorjitter``: ``ColorJitter`` of brightness, contrast and saturation ``color_jitter`` (0.4 in the ImageNet
  recipes of MobileNets and of Pruning from Scratch);
* ``lighting``: AlexNet's PCA lighting noise (Krizhevsky et al. 2012, Sec. 4.1) with standard deviation
  ``lighting_std`` (0.1), on the [0, 1] tensor before normalisation (:class:`datamodules.transforms.Lighting`);
* ``cutout``: Cutout (arXiv:1708.04552) of side ``cutout_length`` on the normalised tensor;
* ``mixup`` / ``cutmix``: batch-level MixUp (arXiv:1710.09412) / CutMix (arXiv:1905.04899) with
  ``mixup_alpha`` / ``cutmix_alpha`` (> 0), applied in the loader's collate function; the batch's targets
  become soft (N, classes) probabilities. Both given: one of the two per batch, with probability 1/2.

``crop_scale_min`` is the smallest area fraction of ImageNet's ``RandomResizedCrop`` (0.08, torchvision's default;
0.25 for the small mobile networks of Pruning from Scratch).

Ops always run in the canonical order (geometry, policy, colour jitter, to-tensor, lighting, normalise, cutout;
mixing per batch),
whatever the order of the list. AugRefine (arXiv:1909.09148) trains with ``autoaugment_cutout`` (optionally
``heavy_mixup`` / ``heavy_cutmix``) and refines with ``standard`` or ``none``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import torch
from torch.utils.data import Dataset, default_collate
from torchvision.transforms import v2

from datamodules.transforms import Cutout, Lighting
from visionsuite.errors import ConfigError

Transform = Callable[[Any], Any]

IMAGE_OPS = ("crop", "flip", "autoaugment", "randaugment", "trivialaugment", "colorjitter", "lighting", "cutout")
BATCH_OPS = ("mixup", "cutmix")
POLICY_OPS = ("autoaugment", "randaugment", "trivialaugment")
KNOWN_OPS = IMAGE_OPS + BATCH_OPS

#: Named policies: name -> ops.
POLICIES: dict[str, tuple[str, ...]] = {
    "none": (),
    "standard": ("crop", "flip"),
    "cutout": ("crop", "flip", "cutout"),
    "autoaugment": ("crop", "flip", "autoaugment"),
    "autoaugment_cutout": ("crop", "flip", "autoaugment", "cutout"),
    "randaugment": ("crop", "flip", "randaugment"),
    "trivialaugment": ("crop", "flip", "trivialaugment"),
    "mixup": ("crop", "flip", "mixup"),
    "cutmix": ("crop", "flip", "cutmix"),
    "heavy_mixup": ("crop", "flip", "autoaugment", "cutout", "mixup"),
    "heavy_cutmix": ("crop", "flip", "autoaugment", "cutout", "cutmix"),
    "imagenet_lighting": ("crop", "flip", "colorjitter", "lighting"),  # MobileNet / Pruning from Scratch ImageNet
}

_AUTOAUGMENT_POLICIES = {
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
    "svhn": v2.AutoAugmentPolicy.SVHN,
}


@dataclass(frozen=True)
class AugmentContext:
    """What a DataModule tells the toolkit about its images.

    Attributes:
        image_size: side of the training images.
        mean, std: per-channel normalisation.
        input_kind: ``pil`` (PIL images: CIFAR, ImageNet) or ``tensor`` (float tensors in [0, 1]: digits).
        crop: ``pad`` (pad then random crop, CIFAR) or ``resized`` (RandomResizedCrop, ImageNet).
        crop_padding: padding of the ``pad`` crop.
        autoaugment_policy: the dataset's AutoAugment policy (``cifar10`` / ``imagenet``).
        flip: whether horizontal flips suit the data.
        resize_size: short side an uncropped ``resized`` image is resized to before the centre crop.
    """

    image_size: int
    mean: Sequence[float]
    std: Sequence[float]
    input_kind: Literal["pil", "tensor"] = "pil"
    crop: Literal["pad", "resized"] = "pad"
    crop_padding: int = 4
    autoaugment_policy: str = "cifar10"
    flip: bool = True
    resize_size: int | None = None


@dataclass(frozen=True)
class AugmentOptions:
    """Parameters of the ops (``data.augment_options``); each documented in the module docstring."""

    cutout_length: int = 16              # DeVries & Taylor's CIFAR-10 value (arXiv:1708.04552)
    mixup_alpha: float = 1.0             # Zhang et al.'s CIFAR value (arXiv:1710.09412)
    cutmix_alpha: float = 1.0            # Yun et al.'s value (arXiv:1905.04899)
    randaugment_num_ops: int = 2         # torchvision's default N
    randaugment_magnitude: int = 9       # torchvision's default M
    autoaugment_policy: str | None = None  # None: the dataset's policy
    color_jitter: float = 0.4            # brightness, contrast and saturation of the colorjitter op
    lighting_std: float = 0.1            # AlexNet's PCA lighting noise
    crop_scale_min: float = 0.08         # RandomResizedCrop's smallest area fraction (torchvision's default)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> AugmentOptions:
        values = {key: value for key, value in dict(values or {}).items() if value is not None}  # None: default
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"data.augment_options has unknown keys {unknown}; known: {', '.join(sorted(known))}.")
        return cls(**values)


@dataclass(frozen=True)
class Augmentation:
    """A validated list of ops with their options; builds the image transform and the batch collate."""

    ops: tuple[str, ...]
    options: AugmentOptions = field(default_factory=AugmentOptions)

    def __post_init__(self) -> None:
        unknown = [op for op in self.ops if op not in KNOWN_OPS]
        if unknown:
            raise ConfigError(f"data.augment_ops: unknown op(s) {unknown}; known ops: {', '.join(KNOWN_OPS)}.")
        if "mixup" in self.ops and not self.options.mixup_alpha > 0:
            raise ConfigError(f"data.augment_options.mixup_alpha={self.options.mixup_alpha}: MixUp draws its "
                              "mixing weight from Beta(alpha, alpha), so alpha must be > 0 (1.0 on CIFAR).")
        if "cutmix" in self.ops and not self.options.cutmix_alpha > 0:
            raise ConfigError(f"data.augment_options.cutmix_alpha={self.options.cutmix_alpha}: CutMix draws its "
                              "area ratio from Beta(alpha, alpha), so alpha must be > 0 (1.0 in the paper).")
        if "cutout" in self.ops and self.options.cutout_length <= 0:
            raise ConfigError(f"data.augment_options.cutout_length={self.options.cutout_length}: must be > 0 "
                              "when the cutout op is on (16 on CIFAR).")
        if not 0 < self.options.crop_scale_min <= 1:
            raise ConfigError(f"data.augment_options.crop_scale_min={self.options.crop_scale_min}: the smallest "
                              "crop area fraction must be in (0, 1] (0.08 torchvision, 0.25 mobile networks).")
        if "colorjitter" in self.ops and self.options.color_jitter < 0:
            raise ConfigError(f"data.augment_options.color_jitter={self.options.color_jitter}: must be >= 0 (0.4).")
        if "lighting" in self.ops and self.options.lighting_std < 0:
            raise ConfigError(f"data.augment_options.lighting_std={self.options.lighting_std}: must be >= 0 (0.1).")
        policy = self.options.autoaugment_policy
        if policy is not None and policy not in _AUTOAUGMENT_POLICIES:
            raise ConfigError(f"data.augment_options.autoaugment_policy={policy!r}: use one of "
                              f"{', '.join(_AUTOAUGMENT_POLICIES)}.")

    @classmethod
    def from_config(cls, augment: str | None, augment_ops: Sequence[str] | None = None,
                    options: Mapping[str, Any] | None = None, key: str = "data.augment") -> Augmentation | None:
        """The augmentation named by ``augment`` plus ``augment_ops``; None when both are unset."""
        if augment is None and augment_ops is None:
            return None
        ops: list[str] = []
        if augment is not None:
            if augment not in POLICIES:
                raise ConfigError(f"{key}={augment!r} is not a known augmentation policy; known policies: "
                                  f"{', '.join(POLICIES)} (or list ops in data.augment_ops: {', '.join(KNOWN_OPS)}).")
            ops += POLICIES[augment]
        if isinstance(augment_ops, str):
            raise ConfigError(f"data.augment_ops={augment_ops!r}: give a list, e.g. data.augment_ops=[crop,flip].")
        ops += [str(op) for op in augment_ops or () if str(op) not in ops]
        return cls(tuple(ops), AugmentOptions.from_mapping(options))

    @property
    def mixes_batches(self) -> bool:
        return any(op in self.ops for op in BATCH_OPS)

    # ------------------------------------------------------------------ per-image transform
    def image_transform(self, context: AugmentContext) -> v2.Compose:
        """The per-image training transform for data described by ``context`` (canonical order)."""
        if "lighting" in self.ops and len(context.mean) != 3:
            raise ConfigError("data.augment_ops: the lighting op needs RGB images (its PCA basis is of the three "
                              f"colour channels); this dataset has {len(context.mean)} channel(s).")
        steps: list[Any] = []
        if context.input_kind == "pil":
            steps += self._geometry(context)
            steps += self._policies(context)
            steps += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
        else:
            steps += self._geometry(context)
            policies = self._policies(context)
            if policies:  # the policies' colour ops expect uint8 images
                steps += [v2.ToDtype(torch.uint8, scale=True), *policies, v2.ToDtype(torch.float32, scale=True)]
        if "lighting" in self.ops:
            steps.append(Lighting(self.options.lighting_std))
        steps.append(v2.Normalize(list(context.mean), list(context.std)))
        if "cutout" in self.ops:
            steps.append(Cutout(self.options.cutout_length))
        return v2.Compose(steps)

    def _geometry(self, context: AugmentContext) -> list[Any]:
        steps: list[Any] = []
        if context.crop == "resized":
            if "crop" in self.ops:
                steps.append(v2.RandomResizedCrop(context.image_size, scale=(self.options.crop_scale_min, 1.0),
                                                  antialias=True))
            else:
                resize = context.resize_size or int(round(context.image_size / 0.875))
                steps += [v2.Resize(resize, antialias=True), v2.CenterCrop(context.image_size)]
        elif "crop" in self.ops and context.crop_padding > 0:
            steps.append(v2.RandomCrop(context.image_size, padding=context.crop_padding))
        if "flip" in self.ops and context.flip:
            steps.append(v2.RandomHorizontalFlip())
        return steps

    def _policies(self, context: AugmentContext) -> list[Any]:
        steps: list[Any] = []
        if "autoaugment" in self.ops:
            policy = self.options.autoaugment_policy or context.autoaugment_policy
            steps.append(v2.AutoAugment(_AUTOAUGMENT_POLICIES[policy]))
        if "randaugment" in self.ops:
            steps.append(v2.RandAugment(num_ops=self.options.randaugment_num_ops,
                                        magnitude=self.options.randaugment_magnitude))
        if "trivialaugment" in self.ops:
            steps.append(v2.TrivialAugmentWide())
        if "colorjitter" in self.ops:
            amount = self.options.color_jitter
            steps.append(v2.ColorJitter(brightness=amount, contrast=amount, saturation=amount))
        return steps

    # ------------------------------------------------------------------ per-batch mixing
    def batch_transform(self, num_classes: int) -> Transform | None:
        """MixUp / CutMix (one of them per batch when both are on), or None."""
        mixers = []
        if "mixup" in self.ops:
            mixers.append(v2.MixUp(alpha=float(self.options.mixup_alpha), num_classes=num_classes))
        if "cutmix" in self.ops:
            mixers.append(v2.CutMix(alpha=float(self.options.cutmix_alpha), num_classes=num_classes))
        if not mixers:
            return None
        return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)

    def collate(self, num_classes: int) -> MixingCollate | None:
        """The loader's collate function when batches are mixed, else None (PyTorch's default)."""
        mixing = self.batch_transform(num_classes)
        return None if mixing is None else MixingCollate(mixing)


class MixingCollate:
    """Collate ``(image, label)`` samples, then mix the batch (labels become soft targets)."""

    def __init__(self, mixing: Transform) -> None:
        self.mixing = mixing

    def __call__(self, samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = default_collate(samples)
        return self.mixing(images, labels)


class PairedViews(Dataset):
    """``(view(image), target, other_view(image))``: two augmentations of the same image per sample.

    The AugRefine refine phase trains on ``view`` (less augmentation) and measures the loss on
    ``other_view`` (the heavy augmentation of phase 1) of the same images (arXiv:1909.09148).
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int] | None, view: Transform,
                 other_view: Transform) -> None:
        self.dataset = dataset
        self.indices = None if indices is None else [int(index) for index in indices]
        self.view = view
        self.other_view = other_view

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any, Any]:
        image, target = self.dataset[self.indices[index] if self.indices is not None else index]
        return self.view(image), target, self.other_view(image)


__all__ = ["BATCH_OPS", "IMAGE_OPS", "KNOWN_OPS", "POLICIES", "AugmentContext", "AugmentOptions", "Augmentation",
           "MixingCollate", "PairedViews"]
