"""ImageNetDataModule on a tiny ImageFolder of real JPEG files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from datamodules import ImageNetDataModule
from datamodules.imagenet import StrictImageFolder
from datamodules.writers import truncate_file, write_garbage, write_image_folder
from datamodules.writers.imagefolder import image_folder_class_names
from visionsuite.errors import ConfigError, DatasetError

NUM_CLASSES, PER_CLASS = 3, 4


@pytest.fixture
def imagenet_root(tmp_path) -> Path:
    return write_image_folder(tmp_path, num_classes=NUM_CLASSES, images_per_class=PER_CLASS, image_size=32)


def _module(root, **kwargs) -> ImageNetDataModule:
    kwargs = {"num_classes": NUM_CLASSES, "image_size": 24, "resize_size": 28, "batch_size": 4, **kwargs}
    return ImageNetDataModule(root, **kwargs)


def test_attributes_need_no_data(tmp_path):
    module = ImageNetDataModule(tmp_path / "nowhere")
    assert (module.num_classes, module.in_channels, module.image_size) == (1000, 3, 224)


def test_writer_layout_is_deterministic(tmp_path):
    first = write_image_folder(tmp_path / "a", num_classes=2, images_per_class=2)
    second = write_image_folder(tmp_path / "b", num_classes=2, images_per_class=2)
    files = sorted(path.relative_to(first) for path in first.rglob("*.JPEG"))
    assert len(files) == 2 * 2 * 2 and files[0] == Path("train/n00000000/n00000000_0.JPEG")
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in files)


def test_batches(imagenet_root):
    module = _module(imagenet_root)
    module.prepare_data()
    module.setup("fit")
    images, labels = next(iter(module.train_dataloader()))
    assert images.shape == (4, 3, 24, 24) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and 0 <= int(labels.min()) and int(labels.max()) < NUM_CLASSES
    assert module.val_dataset is module.test_dataset  # val/ is both validation and test split
    assert module.test_dataset.root == str(imagenet_root / "val")
    assert module.test_dataset.classes == image_folder_class_names(NUM_CLASSES)
    labels = torch.cat([labels for _, labels in module.val_dataloader()])
    assert labels.tolist() == sorted(list(range(NUM_CLASSES)) * PER_CLASS)


def test_search_split_and_val_fraction(imagenet_root):
    module = _module(imagenet_root, search_split=True)
    loaders = module.train_dataloader()
    assert len(loaders["weights"].dataset) == len(loaders["arch"].dataset) == NUM_CLASSES * PER_CLASS // 2
    module = _module(imagenet_root, val_fraction=0.25)
    module.setup()
    assert (len(module.train_dataset), len(module.val_dataset)) == (9, 3)


def test_num_classes_mismatch(imagenet_root):
    with pytest.raises(ConfigError) as info:
        _module(imagenet_root, num_classes=1000).setup()
    message = str(info.value)
    assert "data.num_classes=1000" in message and f"(class folders of train/ and val/) has {NUM_CLASSES} classes" in message


def test_missing_val_folder(imagenet_root):
    shutil.rmtree(imagenet_root / "val")
    for step in ("prepare_data", "setup"):
        with pytest.raises(DatasetError) as info:
            getattr(_module(imagenet_root), step)()
        message = str(info.value)
        assert str(imagenet_root / "val") in message and "<data_dir>/val/<class>/*.JPEG" in message


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / "absent" / "train")):
        _module(tmp_path / "absent").setup()


def test_class_lists_must_agree(imagenet_root):
    (imagenet_root / "val" / "n00000002").rename(imagenet_root / "val" / "n99999999")
    with pytest.raises(DatasetError, match="n99999999"):
        _module(imagenet_root).setup()


def test_empty_class_folder(imagenet_root):
    for image in (imagenet_root / "train" / "n00000001").iterdir():
        image.unlink()
    with pytest.raises(DatasetError, match="n00000001"):
        _module(imagenet_root).setup()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_undecodable_image_names_the_file(imagenet_root, damage):
    broken = imagenet_root / "val" / "n00000001" / "n00000001_2.JPEG"
    if damage == "garbage":
        write_garbage(broken, num_bytes=300)
    else:
        truncate_file(broken, keep_bytes=200)
    module = _module(imagenet_root)
    module.setup()
    with pytest.raises(DatasetError, match="n00000001_2.JPEG"):
        for _ in module.test_dataloader():
            pass
    with pytest.raises(DatasetError, match="n00000001_2.JPEG"):
        StrictImageFolder(imagenet_root / "val")[PER_CLASS + 2]


def test_val_per_class_holds_out_the_last_images_of_every_class(imagenet_root):
    """Pruning from Scratch's ImageNet gate-learning split: the last n images of every train/ class."""
    module = _module(imagenet_root, val_per_class=1)
    module.setup()
    assert (len(module.train_dataset), len(module.val_dataset)) == (NUM_CLASSES * (PER_CLASS - 1), NUM_CLASSES)
    raw = StrictImageFolder(imagenet_root / "train")
    held = {Path(raw.samples[index][0]).name for index in module.val_dataset.indices}
    last = {sorted(path.name for path in folder.iterdir())[-1] for folder in (imagenet_root / "train").iterdir()}
    assert held == last
    assert not module.validates_on_test_split


@pytest.mark.parametrize("options, message", [
    ({"val_per_class": -1}, "data.val_per_class must be an integer >= 0"),
    ({"val_per_class": 1, "val_fraction": 0.25}, "set data.val_fraction=0"),
])
def test_bad_val_per_class_names_the_key(imagenet_root, options, message):
    with pytest.raises(ConfigError, match=message):
        _module(imagenet_root, **options)


def test_val_per_class_leaving_no_training_image_names_the_folder(imagenet_root):
    with pytest.raises(DatasetError, match=r"train/n\d+ has 4 image\(s\): data.val_per_class=4"):
        _module(imagenet_root, val_per_class=PER_CLASS).setup()
