"""The demo's teacher: a CSE-ResNet classifier trained on the seen-class photos (for SAKE, arXiv:1904.03208).

SAKE's teacher is the ImageNet-pretrained CSE-ResNet-50 with its 1000-way head, frozen. ImageNet weights
cannot be fetched here, so the demo first trains the (reduced) CSE-ResNet as a classifier of the seen classes
on their photos (domain tag 1); its checkpoint then starts both the frozen teacher and the student of
:class:`lightning_modules.sake.SakeModule` (``model.teacher_checkpoint``), as ImageNet weights do in the paper.
The teacher's "1000 classes" are then the seen classes, and the demo's semantic mask is over them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.nn import functional as F

from lightning_modules.sake import NETWORK_FORMAT, NETWORK_FORMAT_CHANGES, seen_label_lookup
from networks.sbir.cse_resnet import PHOTO, CSEResNet
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite


class SakeTeacherClassifier(SuiteModule):
    """Cross-entropy training of ``net`` (its ``last_linear`` over the seen classes) on seen-class photos.

    Args:
        net: the CSE-ResNet, built with ``num_classes`` outputs.
        num_classes: seen classes.
        input_size: image side (for ``mode=summary``).
        optimizer / scheduler / scheduler_interval: see :class:`~visionsuite.module.SuiteModule`.
    """

    CHECKPOINT_FORMAT = NETWORK_FORMAT
    CHECKPOINT_FORMAT_CHANGES = NETWORK_FORMAT_CHANGES

    def __init__(self, net: CSEResNet, num_classes: int, input_size: int = 224,
                 optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None,
                 scheduler_interval: str = "epoch") -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/sake_teacher.yaml")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net = net

    def setup(self, stage: str) -> None:
        self.register_buffer("seen_label_of", seen_label_lookup(self.trainer.datamodule, self.hparams.num_classes),
                             persistent=False)

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, self.hparams.input_size, self.hparams.input_size)

    def size_report(self) -> dict[str, float]:
        return {"params_m": round(sum(p.numel() for p in self.net.parameters()) / 1e6, 4),
                "input_size": self.hparams.input_size}

    def _logits_and_labels(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        photos = batch["domain"] == PHOTO
        return self.net(batch["image"][photos], PHOTO), self.seen_label_of[batch["label"][photos]]

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits, labels = self._logits_and_labels(batch)
        loss = F.cross_entropy(logits, labels)
        ensure_finite(loss, "teacher classification loss", self.current_epoch, self.global_step)
        self.log_dict({"train/loss": loss, "train/acc1": (logits.argmax(1) == labels).float().mean()},
                      prog_bar=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        logits, labels = self._logits_and_labels(batch)
        self.log("val/acc1", (logits.argmax(1) == labels).float().mean(), prog_bar=True, batch_size=len(labels))

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        """The teacher has no test of its own (its classes are the seen ones); nothing is evaluated."""
