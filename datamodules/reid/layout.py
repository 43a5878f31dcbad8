"""The on-disk layout of Market-1501 and DukeMTMC-reID: folders, and identity / camera parsed from file names.

Both datasets hold three folders of JPEG crops: ``bounding_box_train/`` (training), ``query/`` and
``bounding_box_test/`` (gallery). The file name carries the labels:

* Market-1501: ``PPPP_cCsS_FFFFFF_NN.jpg`` (person ``PPPP``, camera ``C`` in 1-6, sequence ``S``, frame,
  box index); person ``-1`` marks junk boxes and ``0000`` distractors.
* DukeMTMC-reID: ``PPPP_cC_fFFFFFFF.jpg`` (camera ``C`` in 1-8, frame).

Junk images (person -1) are dropped everywhere; distractors (person 0) are kept (they only occur in the
gallery and count as wrong matches), as in the evaluation protocol of both benchmarks.
Files other than ``.jpg`` (e.g. Market's ``Thumbs.db``) are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from visionsuite.errors import DatasetError

TRAIN_FOLDER = "bounding_box_train"
QUERY_FOLDER = "query"
GALLERY_FOLDER = "bounding_box_test"
JUNK_IDENTITY = -1
DISTRACTOR_IDENTITY = 0
FILE_PATTERNS = {
    "market1501": re.compile(r"^(-1|\d{4})_c([1-9])s(\d+)_(\d{6})_(\d{2})\.jpg$"),
    "dukemtmc": re.compile(r"^(\d{4})_c([1-9])_f(\d{7})\.jpg$"),
}
FILE_FORMATS = {"market1501": "PPPP_cCsS_FFFFFF_NN.jpg", "dukemtmc": "PPPP_cC_fFFFFFFF.jpg"}
LISTED_IN_ERRORS = 20  # malformed names quoted in the error; the rest are counted


@dataclass(frozen=True)
class ReIDRecord:
    """One image: its path, person identity (0 = distractor) and 0-based camera index (``c1`` -> 0)."""

    path: Path
    identity: int
    camera: int


def check_dataset_name(name: str) -> str:
    """``name`` if it is a known layout, else a ConfigError naming ``data.dataset``."""
    if name not in FILE_PATTERNS:
        from visionsuite.errors import ConfigError

        raise ConfigError(f"data.dataset={name!r}: use one of {', '.join(FILE_PATTERNS)}.")
    return name


def parse_file_name(name: str, dataset: str) -> tuple[int, int] | None:
    """``(identity, 0-based camera)`` from a file name of ``dataset``'s layout, or ``None`` if it does not match."""
    match = FILE_PATTERNS[dataset].match(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)) - 1


def read_folder(folder: Path, dataset: str, *, keep_distractors: bool = True) -> list[ReIDRecord]:
    """The labelled images of one folder, sorted by file name; junk (person -1) dropped.

    Raises:
        DatasetError: the folder is missing, holds no image, or holds ``.jpg`` files whose names do not follow
            the layout (all of them listed in one message).
    """
    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist. A {dataset} folder holds {TRAIN_FOLDER}/, {QUERY_FOLDER}/ and "
                           f"{GALLERY_FOLDER}/ with {FILE_FORMATS[dataset]} files; set data.data_dir to it.")
    records, malformed = [], []
    for path in sorted(folder.glob("*.jpg")):
        labels = parse_file_name(path.name, dataset)
        if labels is None:
            malformed.append(path.name)
            continue
        identity, camera = labels
        if identity == JUNK_IDENTITY or (identity == DISTRACTOR_IDENTITY and not keep_distractors):
            continue
        records.append(ReIDRecord(path, identity, camera))
    if malformed:
        shown = ", ".join(malformed[:LISTED_IN_ERRORS])
        more = f" and {len(malformed) - LISTED_IN_ERRORS} more" if len(malformed) > LISTED_IN_ERRORS else ""
        raise DatasetError(f"{len(malformed)} file(s) in {folder} do not follow the {dataset} naming "
                           f"{FILE_FORMATS[dataset]}: {shown}{more}. Rename or remove them.")
    if not records:
        raise DatasetError(f"{folder} holds no {FILE_FORMATS[dataset]} image; check data.data_dir.")
    return records


__all__ = ["GALLERY_FOLDER", "QUERY_FOLDER", "TRAIN_FOLDER", "ReIDRecord", "parse_file_name", "read_folder"]
