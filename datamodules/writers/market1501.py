"""Tiny re-ID datasets in Market-1501's on-disk format (``bounding_box_train/``, ``query/``, ``bounding_box_test/``).

File names follow Market-1501: ``PPPP_cCsS_FFFFFF_NN.jpg`` (person, 1-based camera, sequence, frame, box),
person ``-1`` for junk and ``0000`` for distractors; or DukeMTMC-reID (same folders): ``PPPP_cC_fFFFFFFF.jpg``
(no junk). Used by the re-ID tests, the paper-experiment datasets and the MCNL demo generator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

MARKET_FOLDERS = ("bounding_box_train", "query", "bounding_box_test")


def market1501_file_name(identity: int, camera: int, frame: int, box: int = 1, sequence: int = 1) -> str:
    """Market-1501 file name of person ``identity`` (-1 junk, 0 distractor) under 0-based ``camera``."""
    person = "-1" if identity == -1 else f"{identity:04d}"
    return f"{person}_c{camera + 1}s{sequence}_{frame:06d}_{box:02d}.jpg"


def dukemtmc_file_name(identity: int, camera: int, frame: int) -> str:
    """DukeMTMC-reID file name of person ``identity`` (0 distractor) under 0-based ``camera``."""
    return f"{identity:04d}_c{camera + 1}_f{frame:07d}.jpg"


def write_market1501_folder(root: str | Path, folder: str,
                            samples: Iterable[tuple[int, int, np.ndarray]], quality: int = 95,
                            dataset: str = "market1501") -> list[Path]:
    """Write ``(identity, 0-based camera, HxWx3 uint8 image)`` samples as JPEG files into ``root/folder``.

    Frames count up per (identity, camera) so names are unique; ``dataset`` (``market1501`` or ``dukemtmc``)
    picks the file-name layout. Returns the written paths in order.
    """
    target = Path(root) / folder
    target.mkdir(parents=True, exist_ok=True)
    counters: dict[tuple[int, int], int] = {}
    written = []
    for identity, camera, image in samples:
        frame = counters.get((identity, camera), 0)
        counters[(identity, camera)] = frame + 1
        name = (dukemtmc_file_name(identity, camera, frame=25 * frame + 1) if dataset == "dukemtmc"
                else market1501_file_name(identity, camera, frame=25 * frame + 1))
        path = target / name
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, format="JPEG", quality=quality)
        written.append(path)
    return written


def write_tiny_market1501(root: str | Path, train_identities: Sequence[int] = (1, 2, 3, 4, 5, 6),
                          test_identities: Sequence[int] = (7, 8, 9), num_cameras: int = 3,
                          images_per_camera: int = 2, single_camera_training: bool = False,
                          image_size: tuple[int, int] = (32, 16), junk: int = 1, distractors: int = 1,
                          seed: int = 0, dataset: str = "market1501") -> Path:
    """A tiny Market-1501-format dataset of coloured noise images (each identity its own colour).

    Training identities appear under every camera (or only camera ``identity % num_cameras`` with
    ``single_camera_training``); each test identity gives one query per camera and ``images_per_camera``
    gallery images per camera. ``junk`` images of person -1 and ``distractors`` of person 0 go to the gallery.
    ``dataset="dukemtmc"`` writes DukeMTMC-reID file names (which have no junk: give ``junk=0``).
    """
    rng = np.random.default_rng(seed)
    height, width = image_size

    def picture(identity: int) -> np.ndarray:
        colour = np.array([(37 * identity) % 256, (91 * identity) % 256, (151 * identity) % 256], dtype=float)
        return np.clip(colour + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)

    train = []
    for identity in train_identities:
        cameras = [identity % num_cameras] if single_camera_training else range(num_cameras)
        train += [(identity, camera, picture(identity)) for camera in cameras for _ in range(images_per_camera)]
    query = [(identity, camera, picture(identity)) for identity in test_identities for camera in range(num_cameras)]
    gallery = [(identity, camera, picture(identity)) for identity in test_identities for camera in range(num_cameras)
               for _ in range(images_per_camera)]
    gallery += [(-1, 0, picture(0)) for _ in range(junk)] + [(0, 1 % num_cameras, picture(0)) for _ in range(distractors)]
    for folder, samples in zip(MARKET_FOLDERS, (train, query, gallery), strict=True):
        write_market1501_folder(root, folder, samples, dataset=dataset)
    return Path(root)


__all__ = ["MARKET_FOLDERS", "dukemtmc_file_name", "market1501_file_name", "write_market1501_folder", "write_tiny_market1501"]
