"""P x K and camera-aware batch samplers: composition, determinism per (seed, epoch), disjoint DDP shares."""

from __future__ import annotations

from collections import Counter

import pytest

from datamodules.reid.samplers import CameraAwareBatchSampler, IdentityBatchSampler
from visionsuite.errors import ConfigError

# 24 identities, identity i under camera i % 4, 5 images each (SCT-like)
IDENTITIES = [identity for identity in range(24) for _ in range(5)]
CAMERAS = [identity % 4 for identity in IDENTITIES]


def test_identity_sampler_gives_p_identities_of_k_images() -> None:
    sampler = IdentityBatchSampler(IDENTITIES, batch_size=12, images_per_identity=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 24 // 4
    for batch in batches:
        counts = Counter(IDENTITIES[index] for index in batch)
        assert len(batch) == 12 and len(counts) == 4 and set(counts.values()) == {3}
        assert len(set(batch)) == 12  # 5 images per identity: drawn without replacement


def test_camera_aware_sampler_takes_identities_from_every_camera() -> None:
    sampler = CameraAwareBatchSampler(IDENTITIES, CAMERAS, batch_size=16, images_per_identity=2, seed=0)
    assert sampler.identities_per_camera == 2  # 8 identities a batch over 4 cameras
    batches = list(sampler)
    assert len(batches) == 24 * 2 // 16
    for batch in batches:
        identities = Counter(IDENTITIES[index] for index in batch)
        cameras = Counter(CAMERAS[index] for index in batch)
        assert len(batch) == 16 and set(identities.values()) == {2}
        assert dict(cameras) == {0: 4, 1: 4, 2: 4, 3: 4}


@pytest.mark.parametrize("kind", ["identity", "camera"])
def test_order_depends_on_seed_and_epoch_only(kind: str) -> None:
    def make(seed: int):
        if kind == "identity":
            return IdentityBatchSampler(IDENTITIES, 12, 3, seed=seed)
        return CameraAwareBatchSampler(IDENTITIES, CAMERAS, 16, 2, seed=seed)

    first, again = make(5), make(5)
    first.set_epoch(3)
    again.set_epoch(3)
    assert list(first) == list(again)
    again.set_epoch(4)
    assert list(first) != list(again)
    assert first.epoch_batches(3) != make(6).epoch_batches(3)


@pytest.mark.parametrize("kind", ["identity", "camera"])
def test_ddp_ranks_get_disjoint_equal_shares_of_the_epoch(kind: str) -> None:
    def make(rank: int, world_size: int):
        if kind == "identity":
            return IdentityBatchSampler(IDENTITIES, 6, 3, seed=2, rank=rank, world_size=world_size)
        return CameraAwareBatchSampler(IDENTITIES, CAMERAS, 8, 2, seed=2, rank=rank, world_size=world_size)

    single = make(0, 1)
    ranks = [make(rank, 3) for rank in range(3)]
    for sampler in (single, *ranks):
        sampler.set_epoch(7)
    shares = [list(sampler) for sampler in ranks]
    assert len({len(share) for share in shares}) == 1 and len(shares[0]) == len(single) // 3
    positions = [[single.epoch_batches().index(batch) for batch in share] for share in shares]
    assert all(set(a).isdisjoint(b) for i, a in enumerate(positions) for b in positions[i + 1:])


def test_batch_size_not_divisible_by_images_per_identity() -> None:
    with pytest.raises(ConfigError, match="data.batch_size=10 is not divisible by data.images_per_identity=4"):
        IdentityBatchSampler(IDENTITIES, batch_size=10, images_per_identity=4)
    with pytest.raises(ConfigError, match="not divisible"):
        CameraAwareBatchSampler(IDENTITIES, CAMERAS, batch_size=30, images_per_identity=8)


def test_camera_aware_batch_that_cameras_cannot_fill() -> None:
    with pytest.raises(ConfigError, match="identities per camera x cameras"):
        CameraAwareBatchSampler(IDENTITIES, CAMERAS, batch_size=8 * 4 * 2, images_per_identity=2)  # 8 ids/camera
