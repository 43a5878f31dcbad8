"""The semantic mask m_y of SAKE (arXiv:1904.03208 Sec. 3.3): benchmark classes x teacher (ImageNet) classes.

m[y, c] = 1 when ImageNet class c is benchmark class y's WordNet synset, a hyponym or a hypernym of it;
else the WordNet path similarity of the two synsets when it exceeds 0.2; else 0. The suite reads the mask
from a ``.npy`` file (float, ``(number of benchmark classes, teacher classes)``, rows in the order of the
sorted class-folder names, seen and unseen). Nothing is downloaded at run time; with WordNet at hand the
file is computed once by this module's command::

    pip install nltk   # the optional `wordnet` extra; then, on a machine with internet, once:
    python -m nltk.downloader wordnet
    python -m datamodules.sbir.semantic_mask --class-wnids class_wnids.txt \
        --imagenet-wnids imagenet_wnids.txt --output <data_dir>/semantic_mask.npy

``class_wnids.txt``: one ``<class folder name> <wnid>`` per line (e.g. ``airplane n02691156``; the wnid is the
last token, so names with spaces such as TU-Berlin's ``alarm clock`` work; the official repository's
``sketchy_to_wnid.py`` / ``tuberlin_to_wnid.py`` give these); ``imagenet_wnids.txt``: the 1000 ImageNet wnids in
the order of the teacher's classifier outputs (e.g. ``LOC_synset_mapping.txt``; only the first token of each line
is read).

The official mask itself is also read: SAKE's ``dataset.zip`` ships ``<split folder>/cid_mask.pickle`` (a dict
from class id to the 1000-long mask row) with ``cname_cid.txt`` beside it (``<class name> <class id>`` lines).
A path ending in ``.pickle`` is read that way (a pickle runs code when loaded: read only the official file or one
you made).

A file that is missing, unreadable or does not fit the dataset stops with one :class:`DatasetError` naming it.
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from visionsuite.errors import DatasetError

PATH_SIMILARITY_FLOOR = 0.2  # SAKE Sec. 3.3: similarities at or below are set to zero


def load_semantic_mask(path: str | Path, class_names: Sequence[str], teacher_classes: int,
                       required: Sequence[str] = ()) -> np.ndarray:
    """The ``(len(class_names), teacher_classes)`` float32 mask stored in ``path``; one clear error otherwise.

    ``path``: a ``.npy`` array (rows in ``class_names`` order) or the official ``cid_mask.pickle`` (rows found
    by name through ``cname_cid.txt``; classes it does not name get zero rows, except ``required`` ones, the
    seen classes that training needs, which are an error).
    """
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"{file}: no such semantic mask. Use the official cid_mask.pickle of SAKE's dataset.zip "
                           "or compute a mask with `python -m datamodules.sbir.semantic_mask` (needs WordNet, see "
                           "docs/sake.md).")
    if file.suffix == ".pickle":
        return _load_official_mask(file, class_names, teacher_classes, required)
    num_classes = len(class_names)
    try:
        mask = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{file}: not a readable .npy array ({error}).") from None
    if mask.shape != (num_classes, teacher_classes):
        raise DatasetError(f"{file} has shape {tuple(mask.shape)}, expected "
                           f"({num_classes}, {teacher_classes}): one row per class folder of the dataset (sorted "
                           "names, seen and unseen) and one column per class of the teacher's classifier.")
    if not np.isfinite(mask).all():
        raise DatasetError(f"{file} holds NaN or infinite values.")
    return mask.astype(np.float32)


def _load_official_mask(file: Path, class_names: Sequence[str], teacher_classes: int,
                        required: Sequence[str]) -> np.ndarray:
    """The official ``cid_mask.pickle`` (``{class id: mask row}``) with its ``cname_cid.txt``, as a matrix."""
    names_file = file.with_name("cname_cid.txt")
    if not names_file.is_file():
        raise DatasetError(f"{file}: the official mask needs {names_file} beside it "
                           "(`<class name> <class id>` lines, shipped with it in SAKE's dataset.zip).")
    id_of = {}
    for number, line in enumerate(names_file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            name, _, class_id = line.strip().rpartition(" ")
            if not name or not class_id.lstrip("-").isdigit():
                raise DatasetError(f"{names_file}:{number}: expected `<class name> <class id>`, got {line!r}.")
            id_of[name] = int(class_id)
    try:
        with file.open("rb") as handle:
            rows = pickle.load(handle, encoding="latin1")  # the official file may come from Python 2
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as error:
        raise DatasetError(f"{file}: not a readable pickle ({error}).") from None
    if not isinstance(rows, dict):
        raise DatasetError(f"{file}: expected a dict from class id to mask row, got "
                           f"{type(rows).__name__}.")
    mask = np.zeros((len(class_names), teacher_classes), dtype=np.float32)
    missing = []
    for index, name in enumerate(class_names):
        row = rows.get(id_of[name]) if name in id_of else None
        if row is None:
            missing.append(name)
            continue
        row = np.asarray(row, dtype=np.float32).reshape(-1)
        if row.shape != (teacher_classes,) or not np.isfinite(row).all():
            raise DatasetError(f"{file}: the row of class {name!r} has {row.size} values "
                              f"(or non-finite ones); expected {teacher_classes}, one per teacher class.")
        mask[index] = row
    needed = sorted(set(missing) & set(required))
    if needed:
        raise DatasetError(f"{file} (with {names_file}) has no row for the seen class(es) "
                           f"{', '.join(needed)}: it belongs to another split or dataset.")
    return mask


def _wordnet():  # noqa: ANN202 - nltk's corpus reader
    try:
        from nltk.corpus import wordnet
    except ImportError:
        raise DatasetError("Computing the semantic mask needs nltk's WordNet: `pip install nltk` (the `wordnet` extra), "
                           "then `python -m nltk.downloader wordnet` on a machine with internet.") from None
    try:
        wordnet.ensure_loaded()
    except LookupError:
        raise DatasetError("nltk is installed but its WordNet data is not: run `python -m nltk.downloader wordnet` "
                           "on a machine with internet (or copy nltk_data/corpora/wordnet here).") from None
    return wordnet


def semantic_mask(class_wnids: Sequence[str], imagenet_wnids: Sequence[str], wordnet=None) -> np.ndarray:  # noqa: ANN001
    """m[y, c] of SAKE Sec. 3.3 for benchmark synsets ``class_wnids`` and teacher synsets ``imagenet_wnids``."""
    wordnet = wordnet or _wordnet()

    def synset(wnid: str):  # noqa: ANN202
        return wordnet.synset_from_pos_and_offset(wnid[0], int(wnid[1:]))

    targets = [synset(wnid) for wnid in imagenet_wnids]
    mask = np.zeros((len(class_wnids), len(targets)), dtype=np.float32)
    for row, wnid in enumerate(class_wnids):
        source = synset(wnid)
        ancestors = set(source.closure(lambda s: s.hypernyms()))
        for column, target in enumerate(targets):
            if target == source or target in ancestors or source in set(target.closure(lambda s: s.hypernyms())):
                mask[row, column] = 1.0
                continue
            similarity = source.path_similarity(target) or 0.0
            mask[row, column] = similarity if similarity > PATH_SIMILARITY_FLOOR else 0.0
    return mask


def _read_pairs(path: Path) -> dict[str, str]:
    pairs = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            name, _, wnid = line.strip().rpartition(" ")
            if not name:
                raise DatasetError(f"{path}:{number}: expected `<class name> <wnid>`, got {line!r}.")
            pairs[name.strip()] = wnid
    return pairs


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--class-wnids", type=Path, required=True, help="lines `<class folder name> <wnid>`")
    parser.add_argument("--imagenet-wnids", type=Path, required=True, help="teacher class wnids, one a line")
    parser.add_argument("--output", type=Path, required=True, help="the .npy file to write")
    args = parser.parse_args(argv)
    pairs = _read_pairs(args.class_wnids)
    names = sorted(pairs)  # the datamodule's class order: sorted folder names
    imagenet = [line.split()[0] for line in args.imagenet_wnids.read_text(encoding="utf-8").splitlines() if line.strip()]
    mask = semantic_mask([pairs[name] for name in names], imagenet)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.output, mask)
    print(f"wrote {args.output}: {mask.shape[0]} classes x {mask.shape[1]} teacher classes")


if __name__ == "__main__":
    main()
