"""Writers of NIfTI segmentation datasets: the Decathlon layout, the plain pairs layout, and synthetic CT cases.

Used by the tests (tiny volumes in the real on-disk format, read back by the real loader) and by the demo of the
thickened 2D networks (Yu et al., arXiv:1904.01150), whose target is blood vessels that "require strong 3D
contexts". :func:`synthetic_ct_case` draws a CT-like volume in Hounsfield units: a body-like ellipsoid of soft
tissue in air, organ-like blobs, a hypodense lesion ("tumour", label 2) inside one organ, and thin branching
contrast-filled tubes ("vessels", label 1). Small bright spheres of the vessels' intensity are scattered as
unlabelled distractors: in one slice they look like a vessel's cross-section, and only the neighbouring slices
tell a short sphere from a long tube.

Layouts:

* Decathlon (``write_decathlon_dataset``): ``imagesTr/<case>.nii.gz``, ``labelsTr/<case>.nii.gz``,
  ``imagesTs/`` and ``dataset.json`` with ``labels``, ``training`` and ``test`` as the Medical Segmentation
  Decathlon ships them.
* Pairs (``write_pairs_dataset``): ``images/<case>.nii.gz`` and ``labels/<case>.nii.gz`` with the same names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

Case = tuple[str, np.ndarray, np.ndarray]  # (case id, image, label)
DEMO_LABELS = {0: "background", 1: "vessel", 2: "tumour"}

AIR_HU, TISSUE_HU, ORGAN_HU, LESION_HU, CONTRAST_HU = -1000.0, 40.0, 90.0, 20.0, 190.0


def spacing_affine(spacing: Sequence[float], origin: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """A 4x4 voxel-to-world affine with the given voxel ``spacing`` (mm) and ``origin``."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = origin
    return affine


def write_nifti(path: str | Path, array: np.ndarray, affine: np.ndarray | None = None,
                header: nib.Nifti1Header | None = None) -> Path:
    """Write ``array`` as a NIfTI-1 file (``.nii`` or ``.nii.gz``) with ``affine`` (identity by default)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine, header=header)
    image.set_data_dtype(np.asarray(array).dtype)
    nib.save(image, str(path))
    return path


def write_decathlon_dataset(root: str | Path, cases: Sequence[Case], labels: Mapping[int, str] = DEMO_LABELS,
                            affine: np.ndarray | None = None, test_images: Sequence[tuple[str, np.ndarray]] = (),
                            name: str = "Synthetic", modality: str = "CT") -> Path:
    """Write ``cases`` in the Medical Segmentation Decathlon layout; returns ``root``."""
    root = Path(root)
    training = []
    for case_id, image, label in cases:
        write_nifti(root / "imagesTr" / f"{case_id}.nii.gz", image, affine)
        write_nifti(root / "labelsTr" / f"{case_id}.nii.gz", label, affine)
        training.append({"image": f"./imagesTr/{case_id}.nii.gz", "label": f"./labelsTr/{case_id}.nii.gz"})
    test = []
    for case_id, image in test_images:
        write_nifti(root / "imagesTs" / f"{case_id}.nii.gz", image, affine)
        test.append(f"./imagesTs/{case_id}.nii.gz")
    description = {
        "name": name, "description": "written by datamodules.writers.nifti", "tensorImageSize": "3D",
        "modality": {"0": modality}, "labels": {str(k): v for k, v in sorted(labels.items())},
        "numTraining": len(training), "numTest": len(test), "training": training, "test": test,
    }
    (root / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
    return root


def write_pairs_dataset(root: str | Path, cases: Sequence[Case], affine: np.ndarray | None = None) -> Path:
    """Write ``cases`` as ``images/<case>.nii.gz`` + ``labels/<case>.nii.gz``; returns ``root``."""
    root = Path(root)
    for case_id, image, label in cases:
        write_nifti(root / "images" / f"{case_id}.nii.gz", image, affine)
        write_nifti(root / "labels" / f"{case_id}.nii.gz", label, affine)
    return root


# ---------------------------------------------------------------------------------------------- synthetic CT
def _ellipsoid(grid: np.ndarray, center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    return (((grid - center[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) <= 1.0


def _tube(grid: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float) -> np.ndarray:
    """Voxels within ``radius`` (voxels) of the segment ``start``-``end``."""
    direction = end - start
    length_sq = max(float(direction @ direction), 1e-6)
    offset = grid - start[:, None, None, None]
    t = np.clip((offset * direction[:, None, None, None]).sum(0) / length_sq, 0.0, 1.0)
    closest = start[:, None, None, None] + t * direction[:, None, None, None]
    return ((grid - closest) ** 2).sum(0) <= radius**2


def _vessel_tree(rng: np.random.Generator, grid: np.ndarray, shape: np.ndarray, body: np.ndarray,
                 branches: int) -> np.ndarray:
    """A trunk running along the last axis, bent at random points, with ``branches`` side branches."""
    mask = np.zeros(grid.shape[1:], dtype=bool)
    center = shape / 2.0
    points = [np.array([center[0] + rng.uniform(-0.2, 0.2) * shape[0], center[1] + rng.uniform(-0.15, 0.15) * shape[1],
                        z]) for z in np.linspace(-1, shape[2], 4)]
    radius = rng.uniform(1.3, 1.8)
    for start, end in zip(points[:-1], points[1:], strict=False):
        mask |= _tube(grid, start, end, radius)
    for _ in range(branches):
        anchor = points[int(rng.integers(1, len(points) - 1))] + rng.uniform(-2, 2, size=3)
        direction = rng.normal(size=3) * np.array([1.0, 1.0, 0.6])
        direction /= np.linalg.norm(direction) + 1e-6
        end = anchor + direction * rng.uniform(0.25, 0.45) * shape.min() * 1.5
        mask |= _tube(grid, anchor, end, rng.uniform(0.9, 1.3))
    return mask & body


def synthetic_ct_case(rng: np.random.Generator, shape: Sequence[int] = (64, 64, 32), noise_hu: float = 20.0,
                      branches: int = 4, distractors: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One CT-like volume (int16 HU) and its label (uint8: 0 background, 1 vessel, 2 tumour); see the module doc."""
    size = np.asarray(shape, dtype=np.float64)
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    body = _ellipsoid(grid, size / 2 + rng.uniform(-1, 1, 3), size * np.array([0.45, 0.36, 4.0]))
    image = np.full(shape, AIR_HU)
    image[body] = TISSUE_HU
    organ_center = size / 2 + np.array([size[0] * rng.uniform(-0.18, -0.1), size[1] * rng.uniform(-0.05, 0.05), 0])
    organ = _ellipsoid(grid, organ_center, size * np.array([0.2, 0.18, 0.35])) & body
    image[organ] = ORGAN_HU
    second = _ellipsoid(grid, size / 2 + np.array([size[0] * 0.22, size[1] * 0.05, 0]),
                        size * np.array([0.09, 0.08, 0.3])) & body
    image[second] = ORGAN_HU - 20
    label = np.zeros(shape, dtype=np.uint8)
    lesion_center = organ_center + rng.uniform(-0.06, 0.06, 3) * size
    lesion = _ellipsoid(grid, lesion_center, np.full(3, rng.uniform(0.09, 0.13)) * size.min()) & organ
    image[lesion] = LESION_HU
    label[lesion] = 2
    vessels = _vessel_tree(rng, grid, size, body, branches)
    image[vessels] = CONTRAST_HU
    label[vessels] = 1
    for _ in range(distractors):  # vessel-bright spheres: a vessel's cross-section in one slice, not a tube in 3D
        spot = _ellipsoid(grid, rng.uniform(0.25, 0.75, 3) * size, np.full(3, rng.uniform(1.3, 2.0)))
        spot &= body & ~vessels
        image[spot] = CONTRAST_HU
    image = ndimage.gaussian_filter(image, sigma=0.6) + rng.normal(0.0, noise_hu, size=shape)
    return np.clip(image, -1024, 3071).astype(np.int16), label


def synthetic_cases(num_cases: int, shape: Sequence[int] = (64, 64, 32), seed: int = 0,
                    prefix: str = "synthetic") -> list[Case]:
    """``num_cases`` synthetic CT cases named ``<prefix>_000``...; the same seed gives the same arrays."""
    cases = []
    for index in range(num_cases):
        rng = np.random.default_rng([seed, index])
        image, label = synthetic_ct_case(rng, shape)
        cases.append((f"{prefix}_{index:03d}", image, label))
    return cases


def write_synthetic_ct_dataset(root: str | Path, num_cases: int = 12, shape: Sequence[int] = (64, 64, 32),
                               spacing: Sequence[float] = (1.0, 1.0, 2.0), seed: int = 0,
                               num_test_images: int = 2, layout: str = "decathlon") -> Path:
    """Write the synthetic demo dataset (``layout``: ``decathlon`` or ``pairs``); returns ``root``."""
    cases = synthetic_cases(num_cases + num_test_images, shape, seed)
    affine = spacing_affine(spacing, origin=(-shape[0] * spacing[0] / 2, -shape[1] * spacing[1] / 2, 0.0))
    if layout == "pairs":
        return write_pairs_dataset(root, cases[:num_cases], affine)
    tests = [(case_id, image) for case_id, image, _label in cases[num_cases:]]
    return write_decathlon_dataset(root, cases[:num_cases], DEMO_LABELS, affine, tests, name="SyntheticVessels")


__all__ = [
    "DEMO_LABELS", "spacing_affine", "synthetic_cases", "synthetic_ct_case", "write_decathlon_dataset",
    "write_nifti", "write_pairs_dataset", "write_synthetic_ct_dataset",
]
