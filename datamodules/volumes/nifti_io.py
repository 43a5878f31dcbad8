"""Reading NIfTI volumes with nibabel, with one clear error per kind of bad file.

Every failure names the file: a file that is not NIfTI (or is truncated), a volume that is not 3D, and an
image / label pair whose shapes or affines differ (both files named in one message).
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from visionsuite.errors import DatasetError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
AFFINE_TOLERANCE_MM = 1e-3


@dataclass
class NiftiVolume:
    """One volume as read from disk: voxels ``(X, Y, Z)``, the voxel-to-world ``affine`` and the ``header``."""

    path: Path
    data: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three array axes (from the header's ``pixdim``)."""
        return tuple(float(z) for z in self.header.get_zooms()[:3])  # type: ignore[return-value]


def is_nifti(path: Path) -> bool:
    """Whether ``path`` has a NIfTI file name (``.nii`` or ``.nii.gz``) and is not a macOS ``._`` shadow file."""
    return path.name.endswith(NIFTI_SUFFIXES) and not path.name.startswith("._")


def read_nifti(path: str | Path, dtype: type = np.float32) -> NiftiVolume:
    """Read a 3D NIfTI volume (a trailing axis of size 1 is dropped).

    Raises:
        DatasetError: ``path`` is missing, not a valid NIfTI file, truncated, or not three-dimensional.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such NIfTI file.")
    try:
        image = nib.load(str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = np.asarray(image.dataobj, dtype=dtype)
    except (ImageFileError, EOFError, OSError, ValueError, zlib.error) as error:
        raise DatasetError(f"{path} is not a valid NIfTI file ({type(error).__name__}: {error}); "
                           "re-export or re-download it (.nii or .nii.gz).") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DatasetError(f"{path} holds a {data.ndim}D array of shape {data.shape}; a 3D volume is expected.")
    header = image.header.copy()
    return NiftiVolume(path, data, np.asarray(image.affine, dtype=np.float64), header)


def check_pair(image: NiftiVolume, label: NiftiVolume) -> None:
    """An image and its label must share the voxel grid: same shape and the same affine (within 1e-3 mm).

    Raises:
        DatasetError: naming both files and what differs.
    """
    if image.data.shape != label.data.shape:
        raise DatasetError(f"The image {image.path} has shape {image.data.shape} but its label {label.path} has shape "
                           f"{label.data.shape}; an image and its label must share the voxel grid.")
    if not np.allclose(image.affine, label.affine, atol=AFFINE_TOLERANCE_MM):
        raise DatasetError(f"The image {image.path} and its label {label.path} have different affines "
                           f"(image: {image.affine.round(4).tolist()}, label: {label.affine.round(4).tolist()}); "
                           "resample the label onto the image's grid.")


def check_label_classes(label: NiftiVolume, class_names: list[str], where: str) -> None:
    """Every value of ``label`` must be a class index declared in ``where`` (``0 .. len(class_names) - 1``).

    Raises:
        DatasetError: naming the label file, the undeclared values and the declared classes.
    """
    values = np.unique(label.data)
    unknown = [v for v in values.tolist() if v != int(v) or not 0 <= v < len(class_names)]
    if unknown:
        declared = ", ".join(f"{i}: {name}" for i, name in enumerate(class_names))
        raise DatasetError(f"{label.path} contains label value(s) {[int(v) if v == int(v) else v for v in unknown]} "
                           f"that {where} does not declare (declared: {declared}); fix the labels or the class list.")
