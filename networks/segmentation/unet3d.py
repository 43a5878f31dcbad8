"""The 3D U-Net baseline of the thickened 2D comparison: MONAI's ``UNet`` (residual units, strided convolutions).

Input ``(B, 1, X, Y, Z)`` with sides multiples of :attr:`UNet3D.divisor`; output logits ``(B, C, X, Y, Z)``. The class
only adds what the suite's module and inference read (``input_kind``, ``num_classes``, ``divisor``) and checks its
arguments by name.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNet


class UNet3D(UNet):
    """MONAI ``UNet`` over ``len(channels)`` levels, 2x2x2 strided downsampling between them.

    Args:
        num_classes: Output classes, background included.
        channels: Channels per level (the last one is the bottleneck).
        num_res_units: Residual units per level (2: two convolutions per stage, as Cicek et al.,
            arXiv:1606.06650, Fig. 1).
        in_channels: Input channels (1 for CT).
    """

    input_kind = "volume"

    def __init__(self, num_classes: int, channels: Sequence[int] = (32, 64, 128, 256), num_res_units: int = 2,
                 in_channels: int = 1) -> None:
        channels = [int(c) for c in channels]
        if len(channels) < 2 or min(channels) < 1:
            raise ValueError(f"channels must list at least two positive widths, got {channels}")
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2 (background included), got {num_classes}")
        if int(num_res_units) < 0:
            raise ValueError(f"num_res_units must be >= 0, got {num_res_units}")
        super().__init__(spatial_dims=3, in_channels=in_channels, out_channels=int(num_classes), channels=channels,
                         strides=[2] * (len(channels) - 1), num_res_units=int(num_res_units))
        self.num_classes, self.divisor = int(num_classes), 2 ** (len(channels) - 1)
