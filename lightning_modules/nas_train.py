"""Training a DARTS-family architecture (a genotype) from scratch: the papers' evaluation protocol.

DARTS (arXiv:1806.09055) Sec. 3.1.2 / A.2, PC-DARTS (arXiv:1907.05737) Sec. 4.2-4.3, P-DARTS
(arXiv:1904.12760) Sec. 4.2-4.4: cross-entropy plus an auxiliary-head loss (weight 0.4), drop-path whose
rate grows linearly from 0 to ``drop_path_prob`` over training, and (on ImageNet) label smoothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from metrics.classification import accuracy_metrics, log_evaluation_step, log_training_step
from networks.nas import NetworkCIFAR, NetworkImageNet, count_parameters_m, resolve_genotype
from networks.nas.official import OfficialKeyConverter, official_description
from visionsuite.complexity import count_multiply_adds
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite
from visionsuite.official_weights import OfficialFormat

NETWORKS = ("cifar", "imagenet")


class GenotypeClassifier(SuiteModule):
    """Trains ``NetworkCIFAR`` / ``NetworkImageNet`` built from a genotype.

    Args:
        genotype: a published name (``PDARTS``, ``PC_DARTS_cifar``...) or a path to a ``genotype.json``.
        num_classes: classes of the dataset.
        network: ``cifar`` (3x3 stem) or ``imagenet`` (three stride-2 convs, the mobile setting).
        init_channels: C, the channels of the first cell.
        layers: number of cells.
        auxiliary_weight: weight of the auxiliary-head loss; 0 disables the head.
        auxiliary_batchnorm: ``BatchNorm2d(768)`` after the ImageNet auxiliary head's 2x2 convolution, as in
            P-DARTS's model.py (DARTS's and PC-DARTS's have none); ImageNet network only.
        drop_path_prob: final drop-path rate (reached at the last epoch).
        label_smoothing: cross-entropy label smoothing (0.1 on ImageNet).
        input_size: image side used by ``mode=summary`` to count multiply-adds.
        optimizer: a partial optimizer (bound to the parameters here).
        scheduler: a partial learning-rate scheduler, stepped once per epoch.
        scheduler_interval: ``epoch`` (the papers' schedules) or ``step``.
    """

    def __init__(
        self,
        genotype: str | Mapping[str, Any],
        num_classes: int,
        network: Literal["cifar", "imagenet"] = "cifar",
        init_channels: int = 36,
        layers: int = 20,
        in_channels: int = 3,
        auxiliary_weight: float = 0.4,
        auxiliary_batchnorm: bool = False,
        drop_path_prob: float = 0.3,
        label_smoothing: float = 0.0,
        input_size: int = 32,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/nas_train.yaml")
        if network not in NETWORKS:
            raise ConfigError(f"model.network={network!r}: use one of {', '.join(NETWORKS)}.")
        if not 0.0 <= drop_path_prob < 1.0:
            raise ConfigError(f"model.drop_path_prob={drop_path_prob}: must be in [0, 1).")
        if auxiliary_batchnorm and network != "imagenet":
            raise ConfigError("model.auxiliary_batchnorm=true applies to model.network=imagenet (P-DARTS's ImageNet "
                              "auxiliary head); the CIFAR auxiliary head always has its BatchNorm2d(768).")
        resolved = resolve_genotype(genotype)
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "genotype"])
        self.hparams["genotype"] = resolved.to_dict()  # the checkpoint carries the architecture itself
        auxiliary = auxiliary_weight > 0
        if network == "cifar":
            self.net: nn.Module = NetworkCIFAR(init_channels, num_classes, layers, auxiliary, resolved,
                                               in_channels=in_channels)
        else:
            self.net = NetworkImageNet(init_channels, num_classes, layers, auxiliary, resolved,
                                       in_channels=in_channels, auxiliary_batchnorm=auxiliary_batchnorm)
        self.train_metrics = accuracy_metrics(num_classes, "train/")
        self.val_metrics = accuracy_metrics(num_classes, "val/")
        self.test_metrics = accuracy_metrics(num_classes, "test/")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits, _ = self.net(images)
        return logits

    def on_train_epoch_start(self) -> None:
        # Drop-path rate ramped linearly with the epoch, as in the official training scripts.
        max_epochs = max(self.trainer.max_epochs or 1, 1)
        self.net.drop_path_prob = self.hparams.drop_path_prob * self.current_epoch / max_epochs

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, targets = batch
        logits, aux_logits = self.net(images)
        loss = self._loss(logits, targets)
        if aux_logits is not None:
            loss = loss + self.hparams.auxiliary_weight * self._loss(aux_logits, targets)
        ensure_finite(loss, "training loss", self.current_epoch, self.global_step)
        log_training_step(self, loss, logits, targets, self.train_metrics)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, metrics: nn.Module) -> None:
        images, targets = batch
        log_evaluation_step(self, stage, self(images), targets, metrics)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.hparams.label_smoothing)

    def official_format(self) -> OfficialFormat:
        """The authors' released evaluation networks (DARTS ``cnn/model.py``, PC-DARTS and P-DARTS ``model.py``):
        ``ckpt_path=<cifar10_model.pt | imagenet_model.pt>`` with this experiment's genotype."""
        return OfficialFormat(self.net, OfficialKeyConverter(self.net), official_description(self.net))

    def size_report(self) -> dict[str, float]:
        """Parameters (auxiliary head excluded, as the papers count) and multiply-adds of one image."""
        example = self.example_input()
        size = int(example.shape[-1])
        return {
            "params_m": round(count_parameters_m(self.net, exclude_auxiliary=True), 4),
            "params_with_auxiliary_m": round(count_parameters_m(self.net, exclude_auxiliary=False), 4),
            "madds_m": round(count_multiply_adds(self.net, example) / 1e6, 2),
            "input_size": size,
        }
