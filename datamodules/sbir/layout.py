"""Class folders of sketches and photos, and the zero-shot split of their classes (SAKE, arXiv:1904.03208 Sec. 4.1).

Sketchy-Extended and TU-Berlin-Extended both come as two trees of class folders, one of sketches and one
of photos, with the same class names. The zero-shot protocol trains on the seen classes and retrieves the
photos of the unseen classes with their sketches. The split is read, in this order, from a split file in the
data folder (``zeroshot/unseen_classes.txt`` or ``zeroshot/seen_classes.txt``: one class name per line; only
the first token of a line is read, so ``name id`` lines work too), from the official repository's zero-shot file
lists (``zeroshot/*_filelist_zero.txt``, shipped in its ``dataset.zip``: ``<folders>/<class>/<image> <label>``
lines of the test sketches and photos), else chosen deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class ZeroShotSplit:
    """Sorted class names of the dataset, and which of them are seen (trained on) and unseen (retrieved)."""

    class_names: tuple[str, ...]
    seen: tuple[str, ...]
    unseen: tuple[str, ...]

    def class_id(self, name: str) -> int:
        return self.class_names.index(name)


def scan_domain(folder: Path, key: str) -> dict[str, list[Path]]:
    """``{class name: sorted image files}`` of a tree of class folders (empty folders map to ``[]``)."""
    if not folder.is_dir():
        raise DatasetError(f"data.{key}: {folder} is not a folder. Expected class folders of images there "
                           "(see docs/sake.md for the Sketchy / TU-Berlin Extended layouts).")
    classes = {}
    for class_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
        classes[class_folder.name] = sorted(p for p in class_folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not classes:
        raise DatasetError(f"data.{key}: {folder} holds no class folder.")
    return classes


def check_domains(sketches: dict[str, list[Path]], photos: dict[str, list[Path]], sketch_root: Path,
                  photo_root: Path) -> None:
    """One error listing every class found in one domain only."""
    sketch_only = sorted(set(sketches) - set(photos))
    photo_only = sorted(set(photos) - set(sketches))
    if sketch_only or photo_only:
        parts = []
        if sketch_only:
            parts.append(f"{len(sketch_only)} class folder(s) of sketches have no photo folder in {photo_root}: "
                         f"{', '.join(sketch_only)}")
        if photo_only:
            parts.append(f"{len(photo_only)} class folder(s) of photos have no sketch folder in {sketch_root}: "
                         f"{', '.join(photo_only)}")
        raise DatasetError("; ".join(parts) + ". Every class needs both a sketch and a photo folder of the same "
                           "name: add the missing folders or remove the extra ones.")


def _read_class_file(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


#: The official repository's per-image lists of the zero-shot test set (e.g. ``png_ready_filelist_zero.txt``).
OFFICIAL_ZERO_LIST = "*_filelist_zero.txt"


def read_official_zero_lists(split_folder: Path) -> tuple[list[str], list[Path]]:
    """Unseen class names (sorted) of the official ``*_filelist_zero.txt`` lists in ``split_folder``, and the lists.

    A line is ``<path>/<class>/<image file> <label>`` (class names may hold spaces: ``alarm clock``); the class is
    the image's folder. Every list (sketches, photos) must name the same classes.
    """
    lists = sorted(split_folder.glob(OFFICIAL_ZERO_LIST)) if split_folder.is_dir() else []
    per_list: dict[Path, set[str]] = {}
    for path in lists:
        classes = set()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            head, _, label = line.strip().rpartition(" ")
            image = head if head and label.isdigit() else line.strip()
            parts = Path(image).parts
            if len(parts) < 2:
                raise DatasetError(f"{path}, line {number}: {line.strip()!r} is not '<folders>/<class>/<image> "
                                   "<label>'; restore the file from the official dataset.zip or delete it.")
            classes.add(parts[-2])
        per_list[path] = classes
    if len({frozenset(classes) for classes in per_list.values()}) > 1:
        first, *others = per_list
        differing = [str(other) for other in others if per_list[other] != per_list[first]]
        raise DatasetError(f"The official zero-shot lists disagree on the unseen classes: {first} vs "
                           f"{', '.join(differing)}. Restore them from the official dataset.zip.")
    return sorted(next(iter(per_list.values()), set())), lists


def resolve_split(data_dir: Path, split_dir: str, sketches: dict[str, list[Path]], photos: dict[str, list[Path]],
                  unseen_count: int, split_seed: int) -> ZeroShotSplit:
    """The zero-shot split: ``<data_dir>/<split_dir>/{unseen,seen}_classes.txt`` if present, else the official
    ``<split_dir>/*_filelist_zero.txt`` lists (SAKE's released split), else chosen.

    The deterministic choice (used when neither exists): the sorted class names permuted by
    ``numpy.random.default_rng(split_seed)``; the first ``unseen_count`` are unseen.
    """
    names = tuple(sorted(sketches))
    usable = {name for name in names if sketches[name] and photos.get(name)}
    unseen_file, seen_file = data_dir / split_dir / "unseen_classes.txt", data_dir / split_dir / "seen_classes.txt"
    has_split_file = unseen_file.is_file() or seen_file.is_file()
    # The official lists are read only when no split file of ours takes precedence over them.
    official_unseen, official_lists = ([], []) if has_split_file else read_official_zero_lists(data_dir / split_dir)
    if has_split_file:
        split_file = unseen_file if unseen_file.is_file() else seen_file
        listed = _read_class_file(split_file)
        missing = [name for name in listed if name not in usable]
        if missing:
            raise DatasetError(f"{split_file} names class(es) with no images (no sketch or no photo in the data "
                               f"folders): {', '.join(missing)}. Fix the split file or add the images.")
        unseen = tuple(n for n in names if n in listed) if split_file == unseen_file else \
            tuple(n for n in names if n not in listed)
        source = str(split_file)
    elif official_lists:
        missing = [name for name in official_unseen if name not in usable]
        if missing:
            raise DatasetError(f"The official zero-shot list {official_lists[0]} names class(es) with no images (no "
                               f"sketch or no photo in the data folders): {', '.join(missing)}. Add the images or "
                               "use the data folder the lists came with.")
        unseen = tuple(official_unseen)
        source = str(official_lists[0])
    else:
        if unseen_count < 0 or unseen_count >= len(names):
            raise DatasetError(f"data.unseen_classes={unseen_count}: must be between 1 and {len(names) - 1} for the "
                               f"{len(names)} classes in {data_dir}.")
        order = np.random.default_rng(split_seed).permutation(len(names))
        unseen = tuple(sorted(names[i] for i in order[:unseen_count]))
        source = f"data.unseen_classes={unseen_count}"
    if not unseen:
        raise DatasetError(f"The unseen split is empty ({source}): zero-shot retrieval needs at least one unseen "
                           "class; list the held-out classes in zeroshot/unseen_classes.txt or set "
                           "data.unseen_classes to a positive number.")
    empty = [name for name in unseen if name not in usable]
    if empty:
        raise DatasetError(f"Unseen class(es) with no images ({source}): {', '.join(empty)}; add images or choose "
                           "other classes.")
    seen = tuple(name for name in names if name not in unseen and name in usable)
    if not seen:
        raise DatasetError(f"No seen class is left to train on ({source}).")
    return ZeroShotSplit(names, seen, unseen)
