"""The attack phase of the logit defense (Li, Xie et al., arXiv:1906.10973): the logit dataset.

The paper trains its defender on the logits a classifier gives to clean images and to adversarial images
(Sec. 3). This module attacks the classifier with every configured torchattacks attack (``conf/attack/``),
and records, per image, the clean logits and the logits under each attack into a sharded logit dataset
(:mod:`datamodules.writers.logit_dataset`). One training step handles one shard: the phase's single "epoch"
walks the pending shards once, so an interrupted phase resumes at the first shard not on disk.

Attacks run in pixel space: the classifier is wrapped with the datamodule's normalisation
(:class:`~networks.defense.normalized.NormalizedClassifier`), so ``eps`` = 16/255 means 16 grey levels, as
in the paper. Each shard's random numbers (PGD's random start) come from a seed derived from
``(seed, split, shard)``, so a shard written after a resume equals the one an uninterrupted run writes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from datamodules.logit_attack_data import AttackImagesDataModule
from datamodules.writers.logit_dataset import LogitDatasetWriter
from lightning_modules.logit_defense_classifier import (
    classifier_identity,
    classifier_num_classes,
    load_classifier,
)
from networks.defense.attacks import build_attack, validate_attack_spec
from networks.defense.normalized import NormalizedClassifier
from visionsuite.errors import ConfigError
from visionsuite.module import SuiteModule, plain


def shard_seed(seed: int, split: str, shard: int) -> int:
    """A 63-bit seed that depends only on ``(seed, split, shard)``."""
    digest = hashlib.sha256(f"{seed}/{split}/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global generators (CPU and ``device``) seeded, restoring them afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def record_logits(model: nn.Module, attacks: Mapping[str, Any], images: torch.Tensor,
                  labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean logits ``(N, C)`` and logits under every attack ``(N, K, C)`` of ``images`` in [0, 1].

    ``model`` must be in eval mode; each attack is a torchattacks attack on ``model``.
    """
    with torch.inference_mode():  # the recording passes keep no autograd state (the cheapest forward)
        clean = model(images)
    adversarial = []
    for attack in attacks.values():
        adv_images = attack(images, labels)
        with torch.inference_mode():
            adversarial.append(model(adv_images))
    return clean, torch.stack(adversarial, dim=1)


class LogitAttackModule(SuiteModule):
    """Writes the logit dataset: clean and adversarial logits of the classifier, shard by shard.

    Args:
        classifier: The classifier entry (``checkpoint``, ``module``, ``backbone``, ``num_classes``; see
            :mod:`lightning_modules.logit_defense_classifier`).
        attacks: Attack name -> attack entry (``conf/attack/*.yaml``), several per run.
        logit_dir: Where the logit dataset goes (the phase's ``logits`` artifact).
        seed: Root of the per-shard seeds.
    """

    def __init__(self, classifier: Mapping[str, Any], attacks: Mapping[str, Mapping[str, Any]],
                 logit_dir: str, seed: int = 0) -> None:
        super().__init__(config_name="conf/model/logit_attack.yaml")
        classifier, attacks = plain(classifier), plain(attacks)  # plain containers in hparams
        self.save_hyperparameters(logger=False)
        self.automatic_optimization = False  # nothing is trained: each step attacks one shard
        self.attack_specs = {name: {"name": spec.get("name"), **validate_attack_spec(spec, f"model.attacks.{name}")}
                             for name, spec in (plain(attacks) or {}).items()}
        if not self.attack_specs:
            raise ConfigError("model.attacks is empty: add at least one attack (e.g. +attack@model.attacks.pgd=pgd).")
        self.classifier_spec = dict(plain(classifier))
        self.net = load_classifier(self.classifier_spec, "model.classifier")
        self.logit_dir = Path(logit_dir)
        self.seed = int(seed)
        self.attacked: NormalizedClassifier | None = None
        self.writer: LogitDatasetWriter | None = None
        self.attacks: dict[str, Any] = {}

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, AttackImagesDataModule):
            raise ConfigError("The attack phase needs data: AttackImagesDataModule (conf/data/logit_attack_*.yaml).")
        mean, std = datamodule.normalization()
        self.attacked = NormalizedClassifier(self.net, mean, std)
        num_classes = classifier_num_classes(self.net, self.classifier_spec) or datamodule.num_classes
        if datamodule.num_classes is not None and num_classes != datamodule.num_classes:
            raise ConfigError(f"The classifier {self.classifier_spec['checkpoint']} has {num_classes} classes but "
                              f"the data has {datamodule.num_classes}; attack it on the dataset it was trained on.")
        sizes, strides = datamodule.split_sizes()
        self.writer = LogitDatasetWriter(
            self.logit_dir, int(num_classes), self.attack_specs, sizes, datamodule.shard_size,
            classifier=classifier_identity(self.classifier_spec), normalization={"mean": mean, "std": std},
            seed=self.seed, strides=strides,
        ).open()
        datamodule.pending = [(split, shard, self.writer.shard_indices(split, shard))
                              for split, shard in self.writer.pending_shards()]
        self.artifacts["logits"] = str(self.logit_dir)

    def configure_optimizers(self) -> None:
        return None

    def on_fit_start(self) -> None:
        assert self.attacked is not None
        self.attacked.eval()
        self.attacks = {name: build_attack(spec, self.attacked, f"model.attacks.{name}", device=self.device)
                        for name, spec in self.attack_specs.items()}

    def on_train_epoch_start(self) -> None:
        self.net.eval()  # Lightning puts the module in train mode; the classifier stays in eval mode

    # ------------------------------------------------------------------ one shard per step
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        assert self.attacked is not None and self.writer is not None
        self.net.eval()
        split, shard = batch["split"], int(batch["shard"])
        if self.writer.shard_path(split, shard).is_file():
            return  # written by an earlier epoch of this run (max_epochs > 1 changes nothing)
        with seeded(shard_seed(self.seed, split, shard), self.device):
            clean, adversarial = record_logits(self.attacked, self.attacks, batch["image"], batch["label"])
        labels = batch["label"]
        self.writer.write_shard(split, shard, batch["index"].cpu().numpy(), labels.cpu().numpy(),
                                clean.cpu().numpy(), adversarial.cpu().numpy())
        size = len(labels)
        self.log(f"attack/{split}/clean_acc", (clean.argmax(1) == labels).float().mean(), on_step=False,
                 on_epoch=True, batch_size=size)
        for position, name in enumerate(self.attack_specs):
            self.log(f"attack/{split}/{name}_acc", (adversarial[:, position].argmax(1) == labels).float().mean(),
                     on_step=False, on_epoch=True, batch_size=size)

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, 32, 32)


__all__ = ["LogitAttackModule", "record_logits", "seeded", "shard_seed"]
