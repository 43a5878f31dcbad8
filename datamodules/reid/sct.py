"""The single-camera-training (SCT) split of MCNL (arXiv:1909.10848, Sec. 4.1): one camera per identity.

Query and gallery stay as they are; the training set keeps, for every identity, its images from one camera.
The official split (FlyHighest/Single-Camera-Training-ReID) ships as ``market_sct.txt`` / ``duke_sct.txt``,
one training file name per line (Market-SCT 3,560 images of 751 identities, Duke-SCT 5,992 of 702). When
that file is in the data folder (or named by ``data.sct_list``) it is used; otherwise the split is derived:
for each identity one of its cameras is drawn uniformly with ``numpy.random.default_rng(seed)`` over the
identities in increasing order, and all its images under that camera are kept. On the full datasets the
derived split has the official identity count exactly; its image count is a draw of the same kind as the
official one (the official list's choice rule is not documented, so not reproducible exactly).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from datamodules.reid.layout import ReIDRecord
from visionsuite.errors import DatasetError

OFFICIAL_LIST_NAMES = {"market1501": "market_sct.txt", "dukemtmc": "duke_sct.txt"}


def official_list_path(data_dir: Path, dataset: str, sct_list: str | Path | None) -> Path | None:
    """The SCT list to use: ``sct_list`` if given (must exist), else the official file in ``data_dir`` if present."""
    if sct_list is not None:
        path = Path(sct_list)
        if not path.is_file():
            raise DatasetError(f"data.sct_list={path}: no such file (one training image file name per line).")
        return path
    candidate = data_dir / OFFICIAL_LIST_NAMES[dataset]
    return candidate if candidate.is_file() else None


def split_from_list(records: list[ReIDRecord], list_path: Path) -> list[ReIDRecord]:
    """The training records named in ``list_path`` (file names, one a line; blank lines ignored).

    Raises:
        DatasetError: the list names images that are not in the training folder (all listed in one message).
    """
    names = [line.strip() for line in list_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_name = {record.path.name: record for record in records}
    missing = [Path(name).name for name in names if Path(name).name not in by_name]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise DatasetError(f"The SCT list {list_path} names {len(missing)} image(s) missing from the training folder: "
                           f"{shown}. Use the list that matches this copy of the dataset or remove it to derive the split.")
    return [by_name[Path(name).name] for name in dict.fromkeys(names)]


def derive_split(records: list[ReIDRecord], seed: int = 0) -> list[ReIDRecord]:
    """One camera per identity, drawn uniformly and deterministically (see the module docstring)."""
    cameras: dict[int, set[int]] = defaultdict(set)
    for record in records:
        cameras[record.identity].add(record.camera)
    rng = np.random.default_rng(seed)
    chosen = {identity: sorted(cameras[identity])[int(rng.integers(len(cameras[identity])))]
              for identity in sorted(cameras)}
    return [record for record in records if chosen[record.identity] == record.camera]


def is_single_camera(records: list[ReIDRecord]) -> bool:
    """Whether every identity of ``records`` is seen by one camera only."""
    cameras: dict[int, set[int]] = defaultdict(set)
    for record in records:
        cameras[record.identity].add(record.camera)
    return all(len(seen) == 1 for seen in cameras.values())


__all__ = ["OFFICIAL_LIST_NAMES", "derive_split", "is_single_camera", "official_list_path", "split_from_list"]
