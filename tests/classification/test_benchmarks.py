"""The classification benchmarks run at a tiny size and report both sides (no timing is asserted)."""

from __future__ import annotations

import pytest

from tests.test_benchmarks import run_benchmark


def test_augment_throughput_compares_our_pipeline_with_torchvision_cifar10() -> None:
    report = run_benchmark("augment_throughput.py", "--images", "64", "--batch-size", "16", "--workers", "0",
                           "--repeats", "1", "--cutmix")
    assert report["ops"] == ["crop", "flip", "autoaugment", "cutout", "cutmix"]
    assert report["ours_images_per_s"] > 0 and report["torchvision_images_per_s"] > 0


@pytest.mark.slow  # the method is train_throughput.py's, whose tiny run is in the default set
def test_classifier_throughput_compares_lightning_with_a_plain_loop() -> None:
    report = run_benchmark("classifier_throughput.py", "--steps", "2", "--warmup", "1", "--batch-size", "4",
                           "--backbone", "resnet20", "--width-multiplier", "0.25")
    assert report["plain_images_per_s"] > 0 and report["lightning_images_per_s"] > 0
