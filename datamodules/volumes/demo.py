"""The thickened 2D demo's data: synthetic CT-like volumes written once as a Decathlon-layout NIfTI dataset.

:func:`datamodules.writers.nifti.write_synthetic_ct_dataset` draws the cases (body, organs, a lesion, thin
branching vessels and vessel-bright distractor spheres); they are written into ``data_dir`` on first use and
read back by the real NIfTI loader. ``synthetic.json`` records the settings; a folder written with other settings
is an error (choose another ``data.data_dir`` or delete the folder).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datamodules.volumes.datamodule import VolumeDataModule
from datamodules.writers.nifti import write_synthetic_ct_dataset
from visionsuite.errors import DatasetError

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
        """Write the dataset unless ``data_dir`` already holds one with the same settings."""
        stamp = self.data_dir / STAMP_FILE
        if stamp.is_file():
            found = json.loads(stamp.read_text())
            if found != self.settings:
                raise DatasetError(f"{self.data_dir} holds a synthetic dataset written with other settings ({found}); "
                                   "delete it or choose another data.data_dir.")
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise DatasetError(f"{self.data_dir} is not empty and has no {STAMP_FILE}: choose another data.data_dir.")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=self.data_dir.parent))
        try:
            write_synthetic_ct_dataset(staging, self.settings["num_cases"], self.settings["volume_shape"],
                                       self.settings["voxel_spacing"], self.settings["generator_seed"],
                                       self.settings["num_test_images"])
            (staging / STAMP_FILE).write_text(json.dumps(self.settings))
            try:
                if self.data_dir.exists():
                    self.data_dir.rmdir()
                staging.rename(self.data_dir)  # atomic: readers see no dataset or a whole one
            except OSError:
                if not (self.data_dir / STAMP_FILE).is_file():  # not another run that got there first
                    raise
                self.prepare_data()  # the other run's dataset: check its settings
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def check_data(self) -> None:
        self.prepare_data()
        super().check_data()
