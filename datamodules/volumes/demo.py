"""The thickened 2D demo's data: synthetic CT-like volumes written once as a Decathlon-layout NIfTI dataset.

:func:`datamodules.writers.nifti.write_synthetic_ct_dataset` draws the cases (body, organs, a lesion, thin
branching vessels and vessel-bright distractor spheres); they are written into ``data_dir`` on first use and
read back by the real NIfTI loader. ``synthetic.json`` records the settings; a folder written with other settings
is an error (choose another ``data.data_dir`` or delete the folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datamodules.volumes.datamodule import VolumeDataModule
from datamodules.writers.generated import ensure_generated
from datamodules.writers.nifti import write_synthetic_ct_dataset

STAMP_FILE = "synthetic.json"
GENERATOR_VERSION = 1


class SyntheticVolumeDataModule(VolumeDataModule):
    """:class:`VolumeDataModule` over generated volumes (``num_cases`` labelled, ``num_test_images`` for predict).

    Args:
        num_cases, volume_shape, voxel_spacing, generator_seed, num_test_images: What is generated.
        **kwargs: The :class:`VolumeDataModule` arguments (layout is ``decathlon``).
    """

    def __init__(self, data_dir: str, num_cases: int = 12, volume_shape: Sequence[int] = (64, 64, 32),
                 voxel_spacing: Sequence[float] = (1.0, 1.0, 2.0), generator_seed: int = 0,
                 num_test_images: int = 2, **kwargs: Any) -> None:
        kwargs["layout"] = "decathlon"
        super().__init__(data_dir, **kwargs)
        self.settings = {"version": GENERATOR_VERSION, "num_cases": int(num_cases),
                         "volume_shape": [int(v) for v in volume_shape],
                         "voxel_spacing": [float(v) for v in voxel_spacing], "generator_seed": int(generator_seed),
                         "num_test_images": int(num_test_images)}
        self.prepared = False

    def prepare_data(self) -> None:
        """Write the dataset unless ``data_dir`` already holds one with the same settings (atomically)."""
        settings = self.settings
        ensure_generated(self.data_dir, lambda folder: write_synthetic_ct_dataset(
            folder, settings["num_cases"], settings["volume_shape"], settings["voxel_spacing"],
            settings["generator_seed"], settings["num_test_images"]), settings, stamp_file=STAMP_FILE,
            what="synthetic volume dataset")

    def check_data(self) -> None:
        self.prepare_data()
        super().check_data()
