"""The MCNL demo: generated pedestrians in Market-1501's on-disk format, trained under single-camera training.

An identity is a figure (head, shirt with an optional stripe pattern, trousers, an optional bag on one side)
with its own colours. A camera changes how every identity looks (MCNL's premise, arXiv:1909.10848 Sec. 1):
a per-channel colour cast, its own background (colour and texture), and a viewpoint (figure width, height
and position; side views mirror the bag). Every training identity is seen by one camera only (SCT); each
test identity by several, with queries from one camera and gallery images from all, plus distractors
(person 0) and junk (person -1) in the gallery, as Market-1501 has. Everything comes from
``numpy.random.default_rng(seed)``; the folder is written once under ``${paths.data_dir}/reid_demo`` and a
``reid_demo.json`` stamp records the settings (a folder written with other settings is an error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.reid.datamodule import ReIDDataModule
from datamodules.writers.generated import ensure_generated
from datamodules.writers.market1501 import write_market1501_folder

STAMP_FILE = "reid_demo.json"
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Camera:
    """How one camera sees everybody: colour cast, background, viewpoint."""

    gain: np.ndarray          # per-channel multiplicative colour cast
    background: np.ndarray    # base background colour
    texture: int              # 0 plain, 1 vertical gradient, 2 horizontal stripes, 3 checker
    width_scale: float        # figure width (frontal ~1, side view narrower)
    height_scale: float
    horizontal_offset: float  # figure centre as a fraction of the image width
    mirrored: bool            # side view: the bag appears on the other side


def random_camera(rng: np.random.Generator, colour_cast: float = 0.25) -> Camera:
    """A camera whose per-channel gains lie in ``1 +- colour_cast``."""
    return Camera(gain=rng.uniform(1 - colour_cast, 1 + colour_cast, 3), background=rng.uniform(20, 235, 3), texture=int(rng.integers(4)),
                  width_scale=float(rng.uniform(0.6, 1.1)), height_scale=float(rng.uniform(0.8, 1.0)),
                  horizontal_offset=float(rng.uniform(0.4, 0.6)), mirrored=bool(rng.integers(2)))


def random_identity(rng: np.random.Generator) -> dict[str, Any]:
    return {"shirt": rng.uniform(0, 255, 3), "trousers": rng.uniform(0, 255, 3), "skin": rng.uniform(120, 230, 3),
            "stripes": int(rng.integers(3)), "stripe_colour": rng.uniform(0, 255, 3),
            "bag": int(rng.integers(3)), "bag_colour": rng.uniform(0, 255, 3)}


def render_person(rng: np.random.Generator, person: dict[str, Any], camera: Camera, height: int = 64,
                  width: int = 32) -> np.ndarray:
    """One ``height x width`` RGB image of ``person`` seen by ``camera`` (with per-image jitter and noise)."""
    rows, cols = np.mgrid[0:height, 0:width].astype(float)
    image = np.broadcast_to(camera.background, (height, width, 3)).copy()
    if camera.texture == 1:
        image *= (0.6 + 0.8 * rows / height)[..., None]
    elif camera.texture == 2:
        image *= (0.75 + 0.5 * ((rows // 4) % 2))[..., None]
    elif camera.texture == 3:
        image *= (0.75 + 0.5 * (((rows // 6) + (cols // 6)) % 2))[..., None]
    centre = width * (camera.horizontal_offset + rng.uniform(-0.06, 0.06))
    half_width = width * 0.28 * camera.width_scale * rng.uniform(0.93, 1.07)
    top = height * (1 - camera.height_scale) + rng.uniform(0, 3)
    figure_height = height * camera.height_scale - 2
    head, torso_end = top + 0.18 * figure_height, top + 0.58 * figure_height

    def paint(mask: np.ndarray, colour: np.ndarray) -> None:
        image[mask] = colour

    paint((rows >= top) & (rows < head) & (np.abs(cols - centre) < half_width * 0.55), person["skin"])
    torso = (rows >= head) & (rows < torso_end) & (np.abs(cols - centre) < half_width)
    paint(torso, person["shirt"])
    if person["stripes"] == 1:
        paint(torso & (((rows - head) // 3) % 2 == 0), person["stripe_colour"])
    elif person["stripes"] == 2:
        paint(torso & (np.abs(cols - centre) < half_width * 0.3), person["stripe_colour"])
    legs = (rows >= torso_end) & (rows < top + figure_height) & (np.abs(cols - centre) < half_width * 0.8)
    paint(legs & (np.abs(cols - centre) > half_width * 0.12), person["trousers"])
    if person["bag"]:
        side = (1 if person["bag"] == 1 else -1) * (-1 if camera.mirrored else 1)
        bag_centre = centre + side * half_width * 1.15
        paint((rows >= head + 0.3 * (torso_end - head)) & (rows < torso_end + 2) & (np.abs(cols - bag_centre) < 3),
              person["bag_colour"])
    image = image * camera.gain * rng.uniform(0.9, 1.1) + rng.normal(0, 6, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_reid_demo(root: str | Path, num_cameras: int = 4, train_identities: int = 72, train_images: int = 8,
                    test_identities: int = 50, test_cameras: int = 3, gallery_images: int = 3,
                    distractors: int = 20, junk: int = 5, height: int = 64, width: int = 32, colour_cast: float = 0.25,
                    seed: int = 0) -> Path:
    """Write the demo dataset (Market-1501 layout) into ``root``; see the module docstring."""
    rng = np.random.default_rng(seed)
    cameras = [random_camera(rng, colour_cast) for _ in range(num_cameras)]
    train = []
    for identity in range(1, train_identities + 1):
        person, camera = random_identity(rng), (identity - 1) % num_cameras  # SCT: one camera per identity
        train += [(identity, camera, render_person(rng, person, cameras[camera], height, width))
                  for _ in range(train_images)]
    query, gallery = [], []
    for identity in range(train_identities + 1, train_identities + test_identities + 1):
        person = random_identity(rng)
        seen = rng.choice(num_cameras, size=min(test_cameras, num_cameras), replace=False)
        query.append((identity, int(seen[0]), render_person(rng, person, cameras[int(seen[0])], height, width)))
        gallery += [(identity, int(camera), render_person(rng, person, cameras[int(camera)], height, width))
                    for camera in seen for _ in range(gallery_images)]
    for index in range(distractors):
        camera = index % num_cameras
        gallery.append((0, camera, render_person(rng, random_identity(rng), cameras[camera], height, width)))
    for index in range(junk):
        noise = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
        gallery.append((-1, index % num_cameras, noise))
    root = Path(root)
    write_market1501_folder(root, "bounding_box_train", train)
    write_market1501_folder(root, "query", query)
    write_market1501_folder(root, "bounding_box_test", gallery)
    return root


def ensure_reid_demo(root: str | Path, **settings: Any) -> Path:
    """Generate the demo into ``root`` unless it is there with the same settings (atomically)."""
    return ensure_generated(root, lambda folder: write_reid_demo(folder, **settings),
                            {"version": GENERATOR_VERSION, **settings}, stamp_file=STAMP_FILE, what="re-ID demo")


class ReIDDemoDataModule(ReIDDataModule):
    """:class:`ReIDDataModule` on the generated demo (Market-1501 layout), generated on first use.

    Args:
        generation: settings of :func:`write_reid_demo` (cameras, identities, images, size, seed).
        **kwargs: the :class:`ReIDDataModule` settings.
    """

    def __init__(self, data_dir: str, generation: dict[str, Any] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("dataset", "market1501")
        super().__init__(data_dir, **kwargs)
        self.generation = {key: value for key, value in dict(generation or {}).items()}

    def prepare_data(self) -> None:
        ensure_reid_demo(self.data_dir, **self.generation)

    def check_data(self) -> None:
        ensure_reid_demo(self.data_dir, **self.generation)
        super().check_data()

    def setup(self, stage: str | None = None) -> None:
        ensure_reid_demo(self.data_dir, **self.generation)
        super().setup(stage)
