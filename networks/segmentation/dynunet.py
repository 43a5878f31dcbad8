"""The nnU-Net-style 3D baseline: MONAI's ``DynUNet`` planned from the patch size and voxel spacing.

nnU-Net (Isensee et al., arXiv:1809.10486, Sec. 2.2 and its 3D full-resolution plans) derives the network's
topology from the training patch and the target spacing; :func:`nnunet_kernels_and_strides` applies its rules, so
the experiments give only ``data.patch_size`` and ``data.spacing``:

* an axis is downsampled (stride 2) while its spacing is at most twice the finest spacing and its feature map
  still has at least 8 voxels (so the deepest maps keep >= 4);
* its kernel is 1 while its spacing is more than twice the finest (an anisotropic axis: no context mixed across
  thick slices), 3 otherwise;
* levels are added until no axis can be downsampled;
* filters start at 32 and double per level, capped at 320 (nnU-Net's 3D setting: ``channels`` [32, 64, 128, 256,
  320], the last repeated for deeper levels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from monai.networks.nets import DynUNet


def nnunet_kernels_and_strides(patch_size: Sequence[int], spacing: Sequence[float],
                               min_size: int = 8) -> tuple[list[list[int]], list[list[int]]]:
    """Kernel sizes and strides of each level (the first level's stride is 1) by nnU-Net's rules (module docstring).

    Raises:
        ValueError: ``patch_size`` / ``spacing`` not three positive values, or a side that a stride-2 level would
            halve is odd (the patch must be divisible by the product of its axis's strides).
    """
    sizes, spacings = [int(s) for s in patch_size], [float(s) for s in spacing]
    if len(sizes) != 3 or min(sizes) < 1:
        raise ValueError(f"patch_size must be three positive sides, got {list(patch_size)}")
    if len(spacings) != 3 or min(spacings) <= 0:
        raise ValueError(f"spacing must be three positive voxel sizes (mm), got {list(spacing)}")
    kernels, strides = [], [[1, 1, 1]]
    current = list(sizes)
    while True:
        ratios = [s / min(spacings) for s in spacings]
        stride = [2 if ratio <= 2 and size >= min_size else 1 for ratio, size in zip(ratios, current, strict=True)]
        if stride == [1, 1, 1]:
            break
        if any(size % s for size, s in zip(current, stride, strict=True)):
            raise ValueError(f"patch_size {sizes} cannot be halved at the level of {current} voxels: give sides "
                             "divisible by the product of their strides")
        kernels.append([3 if ratio <= 2 else 1 for ratio in ratios])
        strides.append(stride)
        current = [size // s for size, s in zip(current, stride, strict=True)]
        spacings = [sp * s for sp, s in zip(spacings, stride, strict=True)]
    kernels.append([3, 3, 3])
    return kernels, strides


class DynUNet3D(DynUNet):
    """MONAI ``DynUNet`` with nnU-Net's 3D full-resolution topology for ``patch_size`` at ``spacing``.

    Instance normalisation and leaky ReLU (MONAI's defaults, nnU-Net's choice); no deep supervision (the suite's
    loss takes one output).

    Args:
        num_classes: Output classes, background included.
        patch_size: Training patch (and inference window) in voxels, X Y Z.
        spacing: Voxel spacing (mm) of the volumes the network sees, X Y Z.
        channels: Filters per level; levels beyond the list repeat its last value.
        in_channels: Input channels (1 for CT).
    """

    input_kind = "volume"

    def __init__(self, num_classes: int, patch_size: Sequence[int], spacing: Sequence[float],
                 channels: Sequence[int] = (32, 64, 128, 256, 320), in_channels: int = 1) -> None:
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {num_classes}")
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must list positive filter counts, got {channels}")
        kernels, strides = nnunet_kernels_and_strides(patch_size, spacing)
        if len(strides) < 3:
            raise ValueError(f"patch_size {list(patch_size)} at spacing {list(spacing)} allows {len(strides) - 1} "
                             "downsampling(s); DynUNet needs at least 2: give a patch of at least 16 voxels per side")
        filters = [channels[min(level, len(channels) - 1)] for level in range(len(strides))]
        super().__init__(spatial_dims=3, in_channels=in_channels, out_channels=int(num_classes), kernel_size=kernels,
                         strides=strides, upsample_kernel_size=strides[1:], filters=filters)
        self.num_classes = int(num_classes)
        self.divisor = tuple(math.prod(stride[axis] for stride in strides) for axis in range(3))
