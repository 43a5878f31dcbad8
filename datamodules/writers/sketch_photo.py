"""Tiny sketch/photo datasets in the Sketchy / TU-Berlin Extended layout, with drawn shape classes.

Layout written (the one :class:`datamodules.sbir.SketchPhotoDataModule` reads)::

    <root>/<sketch_dir>/<class>/<class>_<k>.png     sketches: black line drawings on white
    <root>/<photo_dir>/<class>/<class>_<k>.jpg      photos: filled, textured renderings on textured ground
    <root>/zeroshot/unseen_classes.txt              held-out classes, one name a line (when given)
    <root>/zeroshot/*_filelist_zero.txt             or the official zero-shot lists (write_official_zero_lists)
    <root>/semantic_mask.npy                        (when asked) classes x teacher-classes mask, see below
    <folder>/cid_mask.pickle, cname_cid.txt         the official mask format (write_official_semantic_mask)

Each class is a geometric shape (regular polygons, stars, round shapes, signs). A sketch is its outline
drawn with a wobbling hand-drawn stroke; a photo is the same shape filled with a random colour and texture
on a random textured background, at a random rotation, scale and position. The shapes are grouped into a
small taxonomy (:data:`SHAPE_FAMILIES`) so that a WordNet-like semantic mask can be computed the way SAKE
computes it from WordNet (arXiv:1904.03208 Sec. 3.3): 1 for the same class, the path similarity
1 / (1 + path length) in the taxonomy when it exceeds 0.2 (siblings: 1/3), else 0.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "polygon": ("triangle", "square", "pentagon", "hexagon", "heptagon", "octagon", "diamond"),
    "star": ("star5", "star6", "star7"),
    "round": ("circle", "ellipse", "crescent", "heart"),
    "sign": ("cross", "arrow"),
}
SHAPE_CLASSES: tuple[str, ...] = tuple(name for family in SHAPE_FAMILIES.values() for name in family)
PATH_SIMILARITY_FLOOR = 0.2


def _regular(sides: int, stretch: float = 1.0) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, sides, endpoint=False) - np.pi / 2
    if sides == 4 and stretch == 1.0:
        angles = angles + np.pi / 4  # a square stands on its side
    return np.stack([np.cos(angles), stretch * np.sin(angles)], axis=1)


def _star(points: int) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False) - np.pi / 2
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, 0.45)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def shape_outline(name: str) -> np.ndarray:
    """The closed outline of shape class ``name`` as (K, 2) points in [-1, 1]^2 (y down)."""
    sides = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}
    if name in sides:
        return _regular(sides[name])
    if name.startswith("star"):
        return _star(int(name[4:]))
    if name == "diamond":
        return np.array([[0.0, -1.0], [0.65, 0.0], [0.0, 1.0], [-0.65, 0.0]])
    if name == "circle":
        return _regular(48)
    if name == "ellipse":
        return _regular(48, stretch=0.55)
    if name == "crescent":
        outer = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 24)
        inner = np.linspace(0.5 * np.pi, -0.5 * np.pi, 24)
        return np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                               np.stack([0.35 * np.cos(inner), np.sin(inner)], 1)]) - [0.3, 0.0]
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x, y], 1) / 17.0
    if name == "cross":
        a = 0.3
        return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a], [a, 1], [-a, 1], [-a, a], [-1, a],
                         [-1, -a], [-a, -a]], dtype=float)
    if name == "arrow":
        return np.array([[-1, -0.25], [0.2, -0.25], [0.2, -0.7], [1, 0], [0.2, 0.7], [0.2, 0.25], [-1, 0.25]],
                        dtype=float)
    raise ValueError(f"Unknown shape class {name!r}; known: {', '.join(SHAPE_CLASSES)}.")


def _placed(outline: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    angle = math.radians(float(rng.uniform(-15, 15)))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    scale = float(rng.uniform(0.28, 0.42)) * size
    centre = size / 2 + rng.uniform(-0.08, 0.08, size=2) * size
    return outline @ rotation.T * scale + centre


def render_sketch(name: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A line drawing of shape ``name``: the outline resampled densely and displaced by a smooth wobble."""
    outline = _placed(shape_outline(name), rng, size)
    closed = np.concatenate([outline, outline[:1]])
    dense = np.concatenate([np.linspace(a, b, 8, endpoint=False) for a, b in zip(closed[:-1], closed[1:], strict=True)])
    phase = np.linspace(0, 2 * np.pi, len(dense), endpoint=False)
    wobble = sum(rng.normal(0, 0.012 * size) * np.stack([np.cos(k * phase + rng.uniform(0, 6.3)),
                                                        np.sin(k * phase + rng.uniform(0, 6.3))], 1)
                 for k in (2, 3, 5))
    stroke = dense + wobble
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    width = max(1, int(round(size / 40)) + int(rng.integers(0, 2)))
    points = [tuple(p) for p in np.concatenate([stroke, stroke[:2]])]  # a little overshoot, as hands draw
    draw.line(points, fill=(0, 0, 0), width=width, joint="curve")
    return image


def _texture(rng: np.random.Generator, size: int, colour: np.ndarray) -> np.ndarray:
    """A coloured texture: stripes or blotches around ``colour`` plus fine noise."""
    y, x = np.mgrid[0:size, 0:size].astype(float)
    if rng.random() < 0.5:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        pattern = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    else:
        low = rng.normal(0, 1, size=(6, 6))
        pattern = np.asarray(Image.fromarray(((low - low.min()) / (np.ptp(low) + 1e-6) * 255).astype(np.uint8))
                             .resize((size, size), Image.BICUBIC), dtype=float) / 127.5 - 1
    shade = 35 * pattern[..., None] + rng.normal(0, 8, size=(size, size, 1))
    return np.clip(colour[None, None, :] + shade, 0, 255)


def render_photo(name: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A filled, textured rendering of shape ``name`` on a textured background of another colour."""
    background_colour = rng.uniform(40, 215, size=3)
    for _ in range(50):
        object_colour = rng.uniform(0, 255, size=3)
        if np.abs(object_colour - background_colour).sum() > 180:
            break
    canvas = _texture(rng, size, background_colour)
    mask_image = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask_image).polygon([tuple(p) for p in _placed(shape_outline(name), rng, size)], fill=255)
    mask = np.asarray(mask_image, dtype=float)[..., None] / 255.0
    pixels = canvas * (1 - mask) + _texture(rng, size, object_colour) * mask
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def taxonomy_mask(class_names: Sequence[str], teacher_classes: Sequence[str]) -> np.ndarray:
    """SAKE's mask rule on :data:`SHAPE_FAMILIES`: 1 same class, path similarity if > 0.2, else 0."""
    family_of = {name: family for family, names in SHAPE_FAMILIES.items() for name in names}
    mask = np.zeros((len(class_names), len(teacher_classes)), dtype=np.float32)
    for row, name in enumerate(class_names):
        for column, teacher in enumerate(teacher_classes):
            if name == teacher:
                mask[row, column] = 1.0
                continue
            path_length = 2 if family_of.get(name) == family_of.get(teacher) else 4  # via family / via root
            similarity = 1.0 / (1 + path_length)
            mask[row, column] = similarity if similarity > PATH_SIMILARITY_FLOOR else 0.0
    return mask


def write_sketch_photo_dataset(
    root: str | Path,
    class_names: Sequence[str] = SHAPE_CLASSES,
    sketches_per_class: int = 4,
    photos_per_class: int = 4,
    image_size: int = 64,
    seed: int = 0,
    sketch_dir: str = "sketch",
    photo_dir: str = "photo",
    unseen_classes: Sequence[str] | None = None,
    write_mask: bool = False,
    official_zero_lists: Sequence[str] | None = None,
    drawn_shapes: Sequence[str] | None = None,
) -> Path:
    """Write a sketch/photo dataset of shape classes into ``root`` (deterministic given ``seed``).

    Args:
        root: the data folder (``data.data_dir``).
        class_names: shape classes to write (names from :data:`SHAPE_CLASSES`).
        sketches_per_class / photos_per_class: images per class folder of each domain.
        image_size: side of the square images.
        seed: seed of every random choice.
        sketch_dir / photo_dir: the two domain folders under ``root`` (as ``data.sketch_dir`` / ``data.photo_dir``).
        unseen_classes: when given, written to ``zeroshot/unseen_classes.txt`` (the split file).
        official_zero_lists: when given, these unseen classes are written the way the official repository ships
            its split (:func:`write_official_zero_lists`), without ``unseen_classes.txt``.
        write_mask: also write ``semantic_mask.npy``: rows = sorted ``class_names``, columns = the seen classes
            (sorted), i.e. the demo teacher's classes (see :func:`taxonomy_mask`).
        drawn_shapes: the shape drawn for each class of ``class_names`` (default: the class name itself), so that
            a dataset can have as many classes as a benchmark (Sketchy's 125) under any names.
    """
    root = Path(root)
    shapes = list(class_names if drawn_shapes is None else drawn_shapes)
    for index, name in enumerate(class_names):
        for domain, count, render, extension in ((sketch_dir, sketches_per_class, render_sketch, ".png"),
                                                 (photo_dir, photos_per_class, render_photo, ".jpg")):
            folder = root / domain / name
            folder.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, index, 0 if extension == ".png" else 1])
            for k in range(count):
                image = render(shapes[index], rng, image_size)
                image.save(folder / f"{name}_{k}{extension}", **({"quality": 90} if extension == ".jpg" else {}))
    if unseen_classes is not None:
        (root / "zeroshot").mkdir(parents=True, exist_ok=True)
        (root / "zeroshot" / "unseen_classes.txt").write_text("".join(f"{name}\n" for name in unseen_classes))
    if official_zero_lists is not None:
        write_official_zero_lists(root, official_zero_lists, sketch_dir, photo_dir)
    if write_mask:
        names = sorted(class_names)
        seen = [name for name in names if name not in set(unseen_classes or ())]
        np.save(root / "semantic_mask.npy", taxonomy_mask(names, seen))
    return root


def write_official_zero_lists(root: str | Path, unseen_classes: Sequence[str], sketch_dir: str = "sketch",
                              photo_dir: str = "photo", split_dir: str = "zeroshot") -> list[Path]:
    """Write the official repository's zero-shot test lists for the images already under ``root``.

    ``<split_dir>/<sketch_dir>_filelist_zero.txt`` and ``<split_dir>/all_photo_filelist_zero.txt``, one
    ``<domain folder>/<class>/<image> <label>`` line per image of an unseen class (labels 0.. in list order), the
    format of SAKE's ``dataset.zip`` (e.g. ``png_ready/alarm clock/141.png 2``).
    """
    root = Path(root)
    folder = root / split_dir
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for domain, name in ((sketch_dir, f"{Path(sketch_dir).name}_filelist_zero.txt"),
                         (photo_dir, "all_photo_filelist_zero.txt")):
        lines = [f"{domain}/{cls}/{image.name} {label}\n" for label, cls in enumerate(unseen_classes)
                 for image in sorted((root / domain / cls).iterdir())]
        (folder / name).write_text("".join(lines), encoding="utf-8")
        written.append(folder / name)
    return written


def write_official_semantic_mask(folder: str | Path, class_names: Sequence[str], mask: np.ndarray) -> Path:
    """Write ``mask`` (one row per class of ``class_names``) as SAKE's ``dataset.zip`` ships it: ``cid_mask.pickle``
    (a dict from class id to row) and ``cname_cid.txt`` (``<class name> <class id>`` lines) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cname_cid.txt").write_text("".join(f"{name} {index}\n" for index, name in enumerate(class_names)),
                                          encoding="utf-8")
    with (folder / "cid_mask.pickle").open("wb") as handle:
        pickle.dump({index: np.asarray(row, dtype=np.float64) for index, row in enumerate(mask)}, handle)
    return folder / "cid_mask.pickle"
