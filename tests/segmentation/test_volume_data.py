"""The volumetric DataModule on tiny NIfTI datasets: layouts, splits, preprocessing, samples, cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from datamodules.volumes import SyntheticVolumeDataModule, VolumeDataModule
from datamodules.volumes.preprocessing import resample, resampled_shape, window_and_normalise
from datamodules.volumes.samples import crop_with_padding, slice_stack
from datamodules.writers.nifti import synthetic_cases, write_pairs_dataset
from tests.segmentation.conftest import TINY_SHAPE


def test_decathlon_layout_is_read_and_split_by_patient(decathlon_root: Path) -> None:
    data = VolumeDataModule(str(decathlon_root), num_classes=3, val_fraction=0.2, test_fraction=0.2)
    data.check_data()
    assert data.class_names == ["background", "vessel", "tumour"]
    splits = {name: [case.case_id for case in data.split(name)] for name in ("train", "val", "test")}
    assert [len(splits[n]) for n in ("train", "val", "test")] == [4, 1, 1]
    all_ids = sum(splits.values(), [])
    assert sorted(all_ids) == sorted(set(all_ids))  # no patient on two sides
    again = VolumeDataModule(str(decathlon_root), num_classes=3, val_fraction=0.2, test_fraction=0.2)
    assert [c.case_id for c in again.split("val")] == splits["val"]  # the same seed, the same split


def test_pairs_layout(tmp_path: Path) -> None:
    root = write_pairs_dataset(tmp_path / "pairs", synthetic_cases(3, TINY_SHAPE))
    data = VolumeDataModule(str(root), layout="pairs", class_names=["background", "vessel", "tumour"],
                            val_fraction=0.34, test_fraction=0.0, crop_size=(16, 16), batch_size=2)
    data.setup("fit")
    assert data.num_classes == 3 and len(data.split("train")) == 2 and len(data.split("val")) == 1
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (2, 5, 16, 16) and batch["label"].shape == (2, 16, 16)


def test_windowing_and_resampling() -> None:
    hu = np.array([-1000.0, -100.0, 70.0, 240.0, 2000.0])
    assert np.allclose(window_and_normalise(hu, (-100, 240), "minmax"), [0, 0, 0.5, 1, 1])
    zscored = window_and_normalise(hu, (-100, 240), "zscore")
    assert abs(zscored.mean()) < 1e-5 and abs(zscored.std() - 1) < 1e-4
    assert resampled_shape((100, 100, 20), (0.8, 0.8, 5.0), (1.6, 1.6, 2.5)) == (50, 50, 40)
    label = torch.zeros(8, 8, 4, dtype=torch.uint8)
    label[2:6, 2:6, 1:3] = 2
    assert set(resample(label, (16, 16, 8), is_label=True).unique().tolist()) == {0, 2}  # labels stay labels
    assert resample(torch.rand(3, 8, 8, 4), (4, 4, 2), is_label=False).shape == (3, 4, 4, 2)


def test_resampled_cases_are_scored_on_the_file_grid(decathlon_root: Path) -> None:
    data = VolumeDataModule(str(decathlon_root), num_classes=3, spacing=(2.0, 2.0, 2.0), val_fraction=0.2,
                            test_fraction=0.2)
    case = data.source("val").case(0)
    assert tuple(case.image.shape) == (12, 12, 12)  # 24 x 1 mm -> 12 x 2 mm
    assert tuple(case.original_label.shape) == TINY_SHAPE and case.original_shape == TINY_SHAPE


def test_stack_samples_hold_neighbouring_slices_and_the_centre_label() -> None:
    volume = torch.arange(4 * 3 * 5, dtype=torch.float32).reshape(4, 3, 5)
    stack = slice_stack(volume, axis=2, center=0, context_slices=2)
    assert stack.shape == (5, 4, 3)
    assert torch.equal(stack[0], volume[:, :, 0]) and torch.equal(stack[2], volume[:, :, 0])  # edge repeated
    assert torch.equal(stack[4], volume[:, :, 2])
    crop = crop_with_padding(torch.ones(1, 4, 4), [-2, 2], [4, 4], fill=0.0)
    assert crop.sum() == 4 and crop[0, 2:, :2].sum() == 4


def test_samples_are_biased_to_the_foreground_and_depend_only_on_seed_and_index(decathlon_root: Path) -> None:
    def vessel_share(probability: float) -> tuple[float, dict]:
        data = VolumeDataModule(str(decathlon_root), num_classes=3, crop_size=(8, 8), foreground_probability=probability,
                                samples_per_epoch=60, batch_size=60)
        data.setup("fit")
        batch = next(iter(data.train_dataloader()))
        return float((batch["label"] > 0).flatten(1).any(1).float().mean()), batch

    biased, first = vessel_share(1.0)
    uniform, _ = vessel_share(0.0)
    assert biased == 1.0 and uniform < 0.5  # every biased crop holds the foreground voxel it was centred on
    _, second = vessel_share(1.0)
    assert torch.equal(first["image"], second["image"])


def test_cache_and_file_reads_give_the_same_samples(decathlon_root: Path) -> None:
    batches = []
    for cache in (True, False):
        data = VolumeDataModule(str(decathlon_root), num_classes=3, crop_size=(16, 16), cache=cache,
                                samples_per_epoch=4, batch_size=4)
        data.setup("fit")
        batches.append(next(iter(data.train_dataloader())))
        assert bool(data.source("train")._cached) == cache
    assert torch.equal(batches[0]["image"], batches[1]["image"])


def test_patch_samples_and_whole_volume_items(decathlon_root: Path) -> None:
    data = VolumeDataModule(str(decathlon_root), num_classes=3, sample_kind="patch", patch_size=(16, 16, 8),
                            batch_size=2)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (2, 1, 16, 16, 8) and batch["label"].shape == (2, 16, 16, 8)
    item = next(iter(data.val_dataloader()))
    assert item["image"].shape == TINY_SHAPE and item["label"].dtype == torch.uint8
    assert np.allclose(item["affine"], np.diag([1, 1, 2, 1]))


def test_demo_data_is_generated_once(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    data = SyntheticVolumeDataModule(str(root), num_cases=4, volume_shape=(16, 16, 8), num_test_images=1,
                                     num_classes=3, val_fraction=0.25, test_fraction=0.25)
    data.check_data()
    listing = json.loads((root / "dataset.json").read_text())
    assert listing["labels"] == {"0": "background", "1": "vessel", "2": "tumour"} and listing["numTraining"] == 4
    label = nib.load(str(root / "labelsTr" / "synthetic_000.nii.gz")).get_fdata()
    assert label.shape == (16, 16, 8) and set(np.unique(label)) <= {0, 1, 2}
    stamp = (root / "synthetic.json").stat().st_mtime_ns
    SyntheticVolumeDataModule(str(root), num_cases=4, volume_shape=(16, 16, 8), num_test_images=1).check_data()
    assert (root / "synthetic.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_cases_hold_thin_vessels(seed: int) -> None:
    (_, image, label), = synthetic_cases(1, (48, 48, 24), seed=seed)
    vessel = label == 1
    assert 0 < vessel.mean() < 0.02  # thin: under 2% of the voxels
    assert vessel.any(axis=(0, 1)).sum() >= 20  # a tube: present in most axial slices
    assert image[vessel].mean() > image[label == 0].mean() + 100  # contrast-filled


def test_predict_needs_only_the_predict_folder(decathlon_root: Path, make_config, tmp_path: Path) -> None:
    """mode=predict on a real-layout experiment reads data.predict_dir alone: the training data may be gone."""
    from visionsuite.pipeline import run_job

    small = ["model.net.channels=[4,8]", "model.net.highway_channels=1", "model.input_size=24",
             "data.crop_size=[24,24]", "data.samples_per_epoch=4", "data.batch_size=4", "data.pin_memory=false",
             "data.val_fraction=0.2", "data.test_fraction=0.2", "trainer.max_epochs=1", "test_after_fit=false",
             "logger=csv"]
    trained = run_job(make_config("experiment=thickened2d_msd_hepatic_vessel", f"data.data_dir={decathlon_root}",
                                  *small, output_dir=tmp_path / "fit"), announce=False)
    predict_dir = tmp_path / "to_segment"
    predict_dir.mkdir()
    (image,) = sorted((decathlon_root / "imagesTs").glob("*.nii.gz"))
    shutil.copy(image, predict_dir / image.name)
    shutil.rmtree(decathlon_root)  # the training data is gone
    run_job(make_config("experiment=thickened2d_msd_hepatic_vessel", f"data.data_dir={decathlon_root}", *small,
                        "mode=predict", f"ckpt_path={trained['artifacts']['last_checkpoint']}",
                        f"data.predict_dir={predict_dir}", output_dir=tmp_path / "predict"), announce=False)
    written = nib.load(str(tmp_path / "predict" / "predictions" / image.name))
    assert written.shape == nib.load(str(predict_dir / image.name)).shape


def test_training_samples_under_ddp_are_disjoint_per_rank_and_fresh_per_epoch(decathlon_root: Path) -> None:
    """Under DDP Lightning wraps the epoch-offset sampler in its DistributedSamplerWrapper and forwards set_epoch:
    each rank gets a disjoint half of the epoch's sample indices, and the next epoch draws new ones."""
    from lightning_fabric.utilities.distributed import DistributedSamplerWrapper

    data = VolumeDataModule(str(decathlon_root), num_classes=3, crop_size=(24, 24), samples_per_epoch=10,
                            val_fraction=0.2, test_fraction=0.2, num_workers=0, pin_memory=False, seed=0)
    sampler = data.train_dataloader().sampler
    shares = {}
    for epoch in (0, 1):
        for rank in (0, 1):
            wrapped = DistributedSamplerWrapper(sampler, num_replicas=2, rank=rank, shuffle=True, seed=0)
            wrapped.set_epoch(epoch)
            shares[epoch, rank] = list(wrapped)
        first, second = shares[epoch, 0], shares[epoch, 1]
        assert len(first) == len(second) == 5 and not set(first) & set(second)
        assert set(first) | set(second) == set(range(epoch * 10, epoch * 10 + 10))
