"""CIFARDataModule on tiny CIFAR-10/100 files written in the official pickle format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from pytorch_lightning.utilities import CombinedLoader
from torchvision.datasets import CIFAR10

from datamodules import CIFARDataModule
from datamodules.cifar import LocalCIFAR10
from datamodules.sampling import EpochSeededRandomSampler
from datamodules.writers import truncate_file, write_cifar10, write_cifar100
from datamodules.writers.cifar import dump_python2_pickle
from visionsuite.errors import ConfigError, DatasetError

NUM_TRAIN, NUM_TEST = 100, 20


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, num_train=NUM_TRAIN, num_test=NUM_TEST)
    write_cifar100(root, num_train=200, num_test=100)
    return root


@pytest.fixture
def cifar10_copy(tmp_path) -> Path:
    """A private CIFAR-10 that a test may damage."""
    return write_cifar10(tmp_path, num_train=NUM_TRAIN, num_test=NUM_TEST)


def _module(root, name="cifar10", **kwargs) -> CIFARDataModule:
    kwargs.setdefault("batch_size", 16)
    return CIFARDataModule(name, root, **kwargs)


def test_writer_matches_the_official_format(cifar_root):
    folder = cifar_root / "cifar-10-batches-py"
    with open(folder / "data_batch_1", "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")  # the reading snippet of the CIFAR web page
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (NUM_TRAIN // 5, 3072)
    assert batch[b"batch_label"] == b"training batch 1 of 5"
    with open(cifar_root / "cifar-100-python" / "meta", "rb") as handle:
        meta = pickle.load(handle, encoding="bytes")
    assert len(meta[b"fine_label_names"]) == 100 and len(meta[b"coarse_label_names"]) == 20
    with open(cifar_root / "cifar-100-python" / "train", "rb") as handle:
        keys = set(pickle.load(handle, encoding="bytes"))
    assert keys == {b"fine_labels", b"coarse_labels", b"data", b"filenames", b"batch_label"}
    # torchvision's own class reads the files once its md5 check is bypassed.
    dataset = CIFAR10.__new__(CIFAR10)
    dataset._check_integrity = lambda: True
    dataset._load_meta = lambda: None
    CIFAR10.__init__(dataset, str(cifar_root), train=True)
    assert dataset.data.shape == (NUM_TRAIN, 32, 32, 3)


def test_writer_is_deterministic(tmp_path):
    first, second = write_cifar10(tmp_path / "a"), write_cifar10(tmp_path / "b")
    for name in ("data_batch_3", "test_batch", "batches.meta"):
        path = Path("cifar-10-batches-py") / name
        assert (first / path).read_bytes() == (second / path).read_bytes()


def test_attributes_need_no_data(tmp_path):
    module = _module(tmp_path / "nowhere", name="cifar100")
    assert (module.num_classes, module.in_channels, module.image_size) == (100, 3, 32)
    assert _module(tmp_path / "nowhere").num_classes == 10


@pytest.mark.parametrize(
    ("name", "num_classes", "num_train", "num_test"), [("cifar10", 10, 100, 20), ("cifar100", 100, 200, 100)]
)
def test_batches(cifar_root, name, num_classes, num_train, num_test):
    module = _module(cifar_root, name=name, eval_batch_size=32)
    module.prepare_data()
    module.setup("fit")
    loader = module.train_dataloader()
    assert isinstance(loader.sampler, EpochSeededRandomSampler) and not loader.drop_last
    images, labels = next(iter(loader))
    assert images.shape == (16, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() < num_classes
    assert len(module.train_dataset) == num_train and len(module.test_dataset) == num_test
    assert module.val_dataset is module.test_dataset  # val_fraction = 0: validate on the test split
    images, labels = next(iter(module.val_dataloader()))
    assert images.shape == (min(32, num_test), 3, 32, 32)
    all_labels = torch.cat([labels for _, labels in module.test_dataloader()])
    assert len(all_labels) == num_test and len(torch.unique(all_labels)) == min(num_classes, num_test)


def test_eval_loader_is_deterministic_and_normalised(cifar_root):
    module = _module(cifar_root)
    first = next(iter(module.test_dataloader()))[0]
    second = next(iter(_module(cifar_root).test_dataloader()))[0]
    assert torch.equal(first, second)
    assert abs(float(first.mean())) < 1.5


def test_val_fraction_holds_out_part_of_the_training_set(cifar_root):
    module = _module(cifar_root, val_fraction=0.2, seed=3)
    module.setup()
    train, val = module.train_dataset, module.val_dataset
    assert (len(train), len(val)) == (80, 20)
    assert set(train.indices).isdisjoint(val.indices)
    assert set(train.indices) | set(val.indices) == set(range(NUM_TRAIN))
    assert val.transform is not train.transform
    again = _module(cifar_root, val_fraction=0.2, seed=3)
    again.setup()
    assert again.val_dataset.indices == val.indices
    other = _module(cifar_root, val_fraction=0.2, seed=4)
    other.setup()
    assert other.val_dataset.indices != val.indices


@pytest.mark.parametrize(("fraction", "num_weights"), [(0.5, 50), (0.7, 70)])
def test_search_split(cifar_root, fraction, num_weights):
    module = _module(cifar_root, search_split=True, search_split_fraction=fraction, batch_size=8)
    loaders = module.train_dataloader()
    assert set(loaders) == {"weights", "arch"}
    weights, arch = loaders["weights"].dataset, loaders["arch"].dataset
    assert weights.indices == list(range(num_weights))  # the first fraction, as DARTS
    assert arch.indices == list(range(num_weights, NUM_TRAIN))
    assert weights.transform is not None and arch.transform is not None
    assert loaders["weights"].sampler.seed != loaders["arch"].sampler.seed
    val = module.val_dataloader().dataset
    assert val.indices == arch.indices and val.transform is not arch.transform
    assert len(module.test_dataloader().dataset) == NUM_TEST
    batch = next(iter(CombinedLoader(loaders, "max_size_cycle")))[0]
    assert set(batch) == {"weights", "arch"} and batch["arch"][0].shape == (8, 3, 32, 32)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_invalid_search_split_fraction(cifar_root, fraction):
    with pytest.raises(ConfigError, match="data.search_split_fraction"):
        _module(cifar_root, search_split=True, search_split_fraction=fraction)


def test_invalid_config_values(cifar_root):
    with pytest.raises(ConfigError, match="data.name"):
        _module(cifar_root, name="cifar1000")
    with pytest.raises(ConfigError, match="data.val_fraction"):
        _module(cifar_root, val_fraction=1.0)
    with pytest.raises(ConfigError, match="data.val_fraction"):
        _module(cifar_root, val_fraction=0.1, search_split=True)
    with pytest.raises(ConfigError, match="data.batch_size"):
        _module(cifar_root, batch_size=0)


def test_missing_folder(tmp_path):
    module = _module(tmp_path)
    expected = str(tmp_path / "cifar-10-batches-py")
    for step in (module.prepare_data, module.setup):
        with pytest.raises(DatasetError) as info:
            step()
        message = str(info.value)
        assert expected in message and "data_batch_1" in message
        assert "data.download=true" in message


def test_missing_file(cifar10_copy):
    (cifar10_copy / "cifar-10-batches-py" / "data_batch_2").unlink()
    with pytest.raises(DatasetError, match="data_batch_2"):
        _module(cifar10_copy).setup()


def test_truncated_batch_names_the_file(cifar10_copy):
    truncate_file(cifar10_copy / "cifar-10-batches-py" / "data_batch_3", keep_bytes=1000)
    module = _module(cifar10_copy)
    module.prepare_data()  # presence only: the files are all there
    with pytest.raises(DatasetError, match="data_batch_3"):
        module.setup()


def _rewrite(path: Path, changes: dict) -> None:
    with open(path, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    batch.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del batch[key]
    dump_python2_pickle(batch, path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"this is not a pickle"),
        lambda path: _rewrite(path, {b"labels": None}),
        lambda path: _rewrite(path, {b"data": np.zeros((20, 3000), dtype=np.uint8)}),
        lambda path: _rewrite(path, {b"labels": [0] * 19}),
        lambda path: _rewrite(path, {b"labels": [12] * 20}),
    ],
    ids=["not-a-pickle", "missing-labels", "wrong-row-size", "label-count", "label-range"],
)
def test_corrupt_batch_names_the_file(cifar10_copy, damage):
    damage(cifar10_copy / "cifar-10-batches-py" / "data_batch_4")
    with pytest.raises(DatasetError, match="data_batch_4"):
        _module(cifar10_copy).setup()


def test_corrupt_meta_names_the_file(cifar10_copy):
    truncate_file(cifar10_copy / "cifar-10-batches-py" / "batches.meta", keep_bytes=10)
    with pytest.raises(DatasetError, match="batches.meta"):
        _module(cifar10_copy).setup()


def test_verify_checksums_rejects_unofficial_files(cifar_root):
    with pytest.raises(DatasetError, match="md5"):
        LocalCIFAR10(cifar_root, train=False, verify_checksums=True)
    assert len(LocalCIFAR10(cifar_root, train=False)) == NUM_TEST


def test_same_seed_same_order(cifar_root):
    def first_labels(seed):
        module = _module(cifar_root, seed=seed)
        return next(iter(module.train_dataloader()))[1]

    assert torch.equal(first_labels(5), first_labels(5))
    assert not torch.equal(first_labels(5), first_labels(6))
