"""Tiny sizes of the classification tests: a quarter-width ResNet-20, a few batches, CPU."""

from __future__ import annotations

TINY_LOOPS = [
    "data.batch_size=16",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.max_epochs=1",
]
TINY_BACKBONE = ["model/backbone=resnet20", "model.net.width_multiplier=0.25"]
TINY_DIGITS = ["experiment=classify_digits", *TINY_BACKBONE, *TINY_LOOPS]
