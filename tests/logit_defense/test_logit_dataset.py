"""The logit dataset format: exact round trip, byte-stable shards, refusal to mix datasets, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from datamodules.logit_dataset import LogitDataModule, read_logit_file, read_manifest, read_split
from datamodules.writers.logit_dataset import LogitDatasetWriter, shard_name, write_logit_dataset
from visionsuite.errors import ConfigError, DatasetError

ATTACKS = {"pgd": {"name": "pgd", "eps": 0.0627, "alpha": 0.0078, "steps": 10, "random_start": True},
           "fgsm": {"name": "fgsm", "eps": 0.0627}}


def random_splits(seed: int = 0, classes: int = 10, sizes: dict[str, int] | None = None) -> dict[str, dict]:
    generator = np.random.default_rng(seed)
    splits = {}
    for name, count in (sizes or {"train": 150, "test": 70}).items():
        splits[name] = {"label": generator.integers(0, classes, count),
                        "clean": generator.normal(size=(count, classes)).astype(np.float32),
                        "adv": generator.normal(size=(count, len(ATTACKS), classes)).astype(np.float32)}
    return splits


def test_round_trip_is_exact(tmp_path: Path) -> None:
    splits = random_splits()
    root = write_logit_dataset(tmp_path / "logits", splits, ATTACKS, shard_size=32, classifier={"sha256": "ab"})
    manifest = read_manifest(root)
    assert manifest["attack_names"] == ["pgd", "fgsm"] and manifest["num_classes"] == 10
    assert manifest["splits"]["train"] == {"num_samples": 150, "num_shards": 5, "stride": 1}
    assert manifest["classifier"] == {"sha256": "ab"}
    for name, arrays in splits.items():
        read = read_split(root, name)
        np.testing.assert_array_equal(read["index"], np.arange(len(arrays["label"])))
        for key in ("label", "clean", "adv"):
            assert read[key].dtype == arrays[key].astype(read[key].dtype).dtype
            np.testing.assert_array_equal(read[key], arrays[key])


def test_same_arrays_give_the_same_bytes(tmp_path: Path) -> None:
    splits = random_splits()
    first = write_logit_dataset(tmp_path / "a", splits, ATTACKS, shard_size=64)
    second = write_logit_dataset(tmp_path / "b", splits, ATTACKS, shard_size=64)
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files and all((first / name).read_bytes() == (second / name).read_bytes() for name in files)


def test_reopening_with_other_settings_is_refused(tmp_path: Path) -> None:
    LogitDatasetWriter(tmp_path, 10, ATTACKS, {"train": 10, "test": 5}, 4).open()
    LogitDatasetWriter(tmp_path, 10, ATTACKS, {"train": 10, "test": 5}, 4).open()  # same settings: resumes
    with pytest.raises(ConfigError, match="other settings.*attacks"):
        LogitDatasetWriter(tmp_path, 10, {"pgd": ATTACKS["pgd"]}, {"train": 10, "test": 5}, 4).open()


def test_missing_and_corrupt_shards_are_named(tmp_path: Path) -> None:
    root = write_logit_dataset(tmp_path / "logits", random_splits(), ATTACKS, shard_size=32)
    (root / "train" / shard_name(2)).unlink()
    with pytest.raises(DatasetError, match="shard_00002.npz is missing.*resume"):
        read_split(root, "train")
    (root / "test" / shard_name(0)).write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="shard_00000.npz is corrupt"):
        read_split(root, "test")
    with pytest.raises(DatasetError, match="is not a logit dataset"):
        read_manifest(tmp_path / "nowhere")


def test_datamodule_holds_out_validation_and_checks_the_class_count(tmp_path: Path) -> None:
    root = write_logit_dataset(tmp_path / "logits", random_splits(), ATTACKS, shard_size=32)
    data = LogitDataModule(root, batch_size=16, val_fraction=0.2, seed=3)
    data.setup("fit")
    train, val = data.datasets["train"], data.datasets["val"]
    assert len(train) == 120 and len(val) == 30
    assert not set(train.rows) & set(val.rows)
    batch = next(iter(data.train_dataloader()))
    assert batch["clean"].shape == (16, 10) and batch["adv"].shape == (16, 2, 10)
    with pytest.raises(DatasetError, match="holds logits of 10 classes but the defender has 5"):
        LogitDataModule(root, expected_num_classes=5).check_data()


def test_predict_file_formats(tmp_path: Path) -> None:
    np.save(tmp_path / "logits.npy", np.ones((4, 3), dtype=np.float32))
    assert read_logit_file(tmp_path / "logits.npy")["label"].tolist() == [-1] * 4
    np.savez(tmp_path / "other.npz", scores=np.ones((4, 3)))
    with pytest.raises(DatasetError, match="has no `logits` array"):
        read_logit_file(tmp_path / "other.npz")
    with pytest.raises(DatasetError, match="no such file"):
        read_logit_file(tmp_path / "missing.npy")
