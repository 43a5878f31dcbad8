"""Sketch/photo data: layout, zero-shot split, mixed batches and epoch length, augmentation, bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.sbir import SketchPhotoDataModule
from datamodules.sbir.sampling import MixedDomainBatchSampler, domain_batch_sizes
from datamodules.sbir.transforms import SakeRandomAffine
from datamodules.writers.sketch_photo import taxonomy_mask, write_sketch_photo_dataset
from visionsuite.errors import DatasetError

CLASSES = ("triangle", "square", "pentagon", "hexagon", "circle", "star5")


def datamodule(root: Path, **options) -> SketchPhotoDataModule:  # noqa: ANN003
    settings = {"sketch_dir": "sketch", "photo_dir": "photo", "batch_size": 6, "num_workers": 0, "input_size": 32,
                "eval_batch_size": 8, "unseen_classes": 2, "val_fraction": 0.25, **options}
    return SketchPhotoDataModule(data_dir=str(root), **settings)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sketch_photo_dataset(tmp_path_factory.mktemp("sbir"), CLASSES, 4, 6, image_size=32,
                                      unseen_classes=["hexagon", "star5"], write_mask=True)


def test_split_file_decides_the_unseen_classes_and_the_loaders_follow_it(tiny_root: Path) -> None:
    data = datamodule(tiny_root)
    data.setup("fit")
    assert data.split.unseen == ("hexagon", "star5")
    assert data.num_classes == 4 and [data.class_names[i] for i in data.seen_class_ids] == list(data.split.seen)
    unseen_ids = {data.class_names.index("hexagon"), data.class_names.index("star5")}
    assert {item.class_id for item in data.items["test"]} == unseen_ids
    assert not unseen_ids & {item.class_id for item in data.items["train"] + data.items["val"]}
    assert len(data.items["test"]) == 2 * (4 + 6)
    val = data.items["val"]
    assert {item.domain for item in val} == {0, 1} and not set(val) & set(data.items["train"])
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (6, 3, 32, 32)
    assert batch["domain"].tolist() == [0, 0, 1, 1, 1, 1]  # 1/3 sketches
    assert (np.load(tiny_root / "semantic_mask.npy").shape) == (6, 4)


def test_batches_follow_the_tuberlin_ratio_and_the_epoch_seed(tiny_root: Path) -> None:
    data = datamodule(tiny_root, batch_size=10, sketch_fraction=0.1)
    data.setup("fit")
    loader = data.train_dataloader()
    sampler = loader.batch_sampler
    first = list(sampler)
    assert all(sum(1 for index in batch if data.items["train"][index].domain == 0) == 1 for batch in first)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_an_epoch_ends_when_the_shorter_domain_runs_out_as_the_official_zip_of_two_loaders() -> None:
    """train_cse_resnet_sketchy_ext.py: zip(sketch loader of 40 // 3, photo loader of 2 * (40 // 3)), no drop_last."""
    assert domain_batch_sizes(40, 0.3333333333) == (13, 26) and domain_batch_sizes(40, 0.1) == (4, 36)
    assert domain_batch_sizes(30, 0.3333333333) == (10, 20)  # the demo
    # Sketchy-sized seen split: the photos (26 a batch) run out first; the longer rule took 4,645 batches
    sketchy = MixedDomainBatchSampler(range(60_385), range(60_385, 60_385 + 58_400), 13, 26)
    assert len(sketchy) == 2247
    sampler = MixedDomainBatchSampler(range(10), range(10, 17), 2, 3, seed=4)  # 5 sketch, 3 photo batches
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    sketches = [index for batch in batches for index in batch if index < 10]
    photos = [index for batch in batches for index in batch if index >= 10]
    assert sorted(photos) == list(range(10, 17))  # the shorter domain is seen exactly once
    assert len(sketches) == len(set(sketches)) == 6  # the longer one partly, without repeats
    assert [len(batch) for batch in batches] == [5, 5, 3]  # the last photo batch is short (1 photo)
    assert list(sampler) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_without_split_file_the_choice_is_deterministic(tmp_path: Path) -> None:
    root = write_sketch_photo_dataset(tmp_path, CLASSES, 2, 2, image_size=16)
    first, second = datamodule(root, unseen_classes=3), datamodule(root, unseen_classes=3)
    first.check_data(), second.check_data()
    assert first.split.unseen == second.split.unseen and len(first.split.unseen) == 3
    assert datamodule(root, unseen_classes=3, split_seed=5).split is None  # lazily scanned


def test_class_folders_in_one_domain_only_are_listed_in_one_error(tmp_path: Path) -> None:
    root = write_sketch_photo_dataset(tmp_path, CLASSES, 2, 2, image_size=16)
    shutil.rmtree(root / "photo" / "square")
    shutil.rmtree(root / "photo" / "circle")
    with pytest.raises(DatasetError, match=r"2 class folder\(s\) of sketches have no photo folder.*circle, square"):
        datamodule(root).check_data()


def test_split_file_naming_a_class_without_images(tmp_path: Path) -> None:
    root = write_sketch_photo_dataset(tmp_path, CLASSES, 2, 2, image_size=16, unseen_classes=["hexagon", "zebra"])
    with pytest.raises(DatasetError, match="unseen_classes.txt names class.*zebra"):
        datamodule(root).check_data()
    for image in (root / "photo" / "hexagon").iterdir():
        image.unlink()  # a folder without images is no class either
    (root / "zeroshot" / "unseen_classes.txt").write_text("hexagon\n")
    with pytest.raises(DatasetError, match="with no images.*hexagon"):
        datamodule(root).check_data()


def test_empty_unseen_split(tmp_path: Path) -> None:
    root = write_sketch_photo_dataset(tmp_path, CLASSES, 2, 2, image_size=16, unseen_classes=[])
    with pytest.raises(DatasetError, match="unseen split is empty"):
        datamodule(root).check_data()
    (root / "zeroshot" / "unseen_classes.txt").unlink()
    with pytest.raises(DatasetError, match="data.unseen_classes=0"):
        datamodule(root, unseen_classes=0).check_data()


def test_augmentation_keeps_size_and_fills_white() -> None:
    import random

    from PIL import Image

    random.seed(0)
    image = Image.new("RGB", (64, 64), (0, 0, 0))
    augmented = [np.asarray(SakeRandomAffine(probability=1.0)(image)) for _ in range(20)]
    assert all(a.shape == (64, 64, 3) for a in augmented)
    assert any((a == 255).all(axis=2).any() for a in augmented)  # uncovered corners are white
    assert np.asarray(SakeRandomAffine(probability=0.0)(image)).max() == 0


def test_taxonomy_mask_follows_the_sake_rule() -> None:
    mask = taxonomy_mask(["hexagon", "square", "star6"], ["pentagon", "square", "star5"])
    np.testing.assert_allclose(mask, [[1 / 3, 1 / 3, 0], [1 / 3, 1, 0], [0, 0, 1 / 3]], rtol=1e-6)
    assert torch.from_numpy(mask).dtype == torch.float32


def test_the_official_zero_shot_file_lists_decide_the_split(tmp_path: Path) -> None:
    """With SAKE's dataset.zip split folder (``*_filelist_zero.txt``) and no split file of ours, its classes are
    the unseen ones; a class folder name with a space (TU-Berlin's ``alarm clock``) is read whole."""
    root = write_sketch_photo_dataset(tmp_path, CLASSES, 2, 2, image_size=16, sketch_dir="png_ready",
                                      photo_dir="ImageResized_ready", official_zero_lists=["circle", "star5"])
    for domain in ("png_ready", "ImageResized_ready"):  # rename a class folder to a TU-Berlin-like name
        (root / domain / "star5").rename(root / domain / "alarm clock")
    for list_file in (root / "zeroshot").glob("*_filelist_zero.txt"):
        list_file.write_text(list_file.read_text().replace("/star5/", "/alarm clock/"))
    assert (root / "zeroshot" / "png_ready_filelist_zero.txt").read_text().splitlines()[-1].startswith(
        "png_ready/alarm clock/star5_1.png 1")
    module = datamodule(root, sketch_dir="png_ready", photo_dir="ImageResized_ready", unseen_classes=3)
    module.check_data()
    assert module.split.unseen == ("alarm clock", "circle")  # the lists' two classes, not data.unseen_classes=3
    # our own split file still comes first
    (root / "zeroshot" / "unseen_classes.txt").write_text("square\n")
    module = datamodule(root, sketch_dir="png_ready", photo_dir="ImageResized_ready")
    module.check_data()
    assert module.split.unseen == ("square",)


def test_official_zero_lists_that_disagree_or_name_missing_classes(tmp_path: Path) -> None:
    root = write_sketch_photo_dataset(tmp_path, CLASSES, 2, 2, image_size=16, official_zero_lists=["circle"])
    photo_list = root / "zeroshot" / "all_photo_filelist_zero.txt"
    photo_list.write_text(photo_list.read_text() + "photo/square/square_0.jpg 1\n")
    with pytest.raises(DatasetError, match="official zero-shot lists disagree"):
        datamodule(root).check_data()
    photo_list.unlink()
    sketch_list = root / "zeroshot" / "sketch_filelist_zero.txt"
    sketch_list.write_text(sketch_list.read_text() + "sketch/zebra/zebra_0.png 1\n")
    with pytest.raises(DatasetError, match="sketch_filelist_zero.txt names class.*zebra"):
        datamodule(root).check_data()
    sketch_list.write_text("circle_0.png 0\n")
    with pytest.raises(DatasetError, match="line 1.*not '<folders>/<class>/<image> <label>'"):
        datamodule(root).check_data()
    (root / "zeroshot" / "unseen_classes.txt").write_text("circle\n")  # our split file: the lists are not read
    module = datamodule(root)
    module.check_data()
    assert module.split.unseen == ("circle",)
