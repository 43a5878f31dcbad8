"""Market-1501 / DukeMTMC-reID file layouts and the SCT split, on tiny datasets written in the real format."""

from __future__ import annotations

from pathlib import Path

import pytest

from datamodules.reid.datamodule import ReIDDataModule
from datamodules.reid.layout import parse_file_name, read_folder
from datamodules.reid.sct import derive_split, is_single_camera, split_from_list
from datamodules.writers.market1501 import market1501_file_name, write_tiny_market1501
from visionsuite.errors import DatasetError


def test_file_names_of_both_layouts() -> None:
    assert parse_file_name("0002_c2s1_000301_01.jpg", "market1501") == (2, 1)
    assert parse_file_name("-1_c3s2_000401_03.jpg", "market1501") == (-1, 2)
    assert parse_file_name("0000_c6s1_000001_01.jpg", "market1501") == (0, 5)
    assert parse_file_name("0005_c2_f0046985.jpg", "dukemtmc") == (5, 1)
    assert parse_file_name("0005_c2_f0046985.jpg", "market1501") is None
    assert parse_file_name("person_c1.jpg", "market1501") is None
    assert market1501_file_name(-1, 0, frame=7) == "-1_c1s1_000007_01.jpg"


def test_junk_dropped_distractors_kept_other_files_ignored(tmp_path: Path) -> None:
    root = write_tiny_market1501(tmp_path, junk=2, distractors=3)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")
    gallery = read_folder(root / "bounding_box_test", "market1501")
    identities = [record.identity for record in gallery]
    assert -1 not in identities
    assert identities.count(0) == 3
    assert len(gallery) == 3 * 3 * 2 + 3


def test_every_malformed_name_in_one_error(tmp_path: Path) -> None:
    root = write_tiny_market1501(tmp_path)
    for name in ("bad_name.jpg", "0001_c1.jpg", "12_c1s1_000001_01.jpg"):
        (root / "query" / name).write_bytes(b"")
    with pytest.raises(DatasetError) as error:
        read_folder(root / "query", "market1501")
    message = str(error.value)
    assert "3 file(s)" in message and "PPPP_cCsS_FFFFFF_NN.jpg" in message
    for name in ("bad_name.jpg", "0001_c1.jpg", "12_c1s1_000001_01.jpg"):
        assert name in message


def test_missing_folder_names_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="bounding_box_train"):
        ReIDDataModule(str(tmp_path / "nowhere")).check_data()


def test_derived_sct_split_keeps_every_identity_under_one_camera(tmp_path: Path) -> None:
    records = read_folder(write_tiny_market1501(tmp_path, images_per_camera=2) / "bounding_box_train", "market1501")
    assert not is_single_camera(records)
    split = derive_split(records, seed=3)
    assert is_single_camera(split)
    assert {r.identity for r in split} == {r.identity for r in records}
    assert len(split) == 6 * 2  # 6 identities, all their images of the chosen camera
    assert split == derive_split(records, seed=3)
    assert any(derive_split(records, seed=seed) != split for seed in range(4, 10))


def test_official_list_is_used_when_present(tmp_path: Path) -> None:
    root = write_tiny_market1501(tmp_path)
    listed = [market1501_file_name(1, 0, frame=1), market1501_file_name(2, 1, frame=26)]
    (root / "market_sct.txt").write_text("\n".join(listed) + "\n\n")
    module = ReIDDataModule(str(root), sampler="identity", batch_size=4, images_per_identity=2, num_workers=0)
    module.setup()
    assert [record.path.name for record in module.train_dataset.records] == listed


def test_list_naming_missing_images_is_one_error(tmp_path: Path) -> None:
    root = write_tiny_market1501(tmp_path)
    records = read_folder(root / "bounding_box_train", "market1501")
    sct_list = tmp_path / "my_sct.txt"
    sct_list.write_text("0001_c1s1_000001_01.jpg\n0999_c1s1_000001_01.jpg\n0998_c2s1_000001_01.jpg\n")
    with pytest.raises(DatasetError) as error:
        split_from_list(records, sct_list)
    assert "2 image(s) missing" in str(error.value)
    assert "0999_c1s1_000001_01.jpg" in str(error.value) and "0998_c2s1_000001_01.jpg" in str(error.value)
    with pytest.raises(DatasetError, match="data.sct_list"):
        ReIDDataModule(str(root), sct_list=str(tmp_path / "absent.txt")).check_data()
