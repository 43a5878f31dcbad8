"""Training and evaluation of CenterNet, the keypoint-triplet detector (Duan et al., arXiv:1904.08189).

* Training: the loss of Eq. 1 (``networks.detection.losses``) on every stack's outputs, Adam (lr 2.5e-4,
  batch 48) for 480k iterations with the rate divided by 10 at 450k (official code); the schedule is stepped
  per iteration (``scheduler_interval: step``).
* Validation / test: the decoding of Sec. 3 and 4.2 (``networks.detection.decoding``; flip testing and
  optional multi-scale), scored with the official COCO protocol (pycocotools) by the ``CocoBoxAP`` metric:
  ``{val,test}/{AP, AP50, AP75, APs, APm, APl}``.
* Files and pictures (``categories.json``, validation pictures, ``mode=predict`` outputs) are written by the
  callbacks of ``callbacks.detection`` that this module declares (``configure_callbacks``).

The network is injected, built (``model.net``: a preset of ``networks.detection.centernet``). The category table
(original ids and names, in class-index order) is stored in checkpoints, so predictions of a checkpoint use the
ids of the dataset it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, Literal

import pytorch_lightning as pl
import torch

from callbacks.detection import DetectionPictures, DetectionPredictionWriter
from metrics.detection import COCO_METRICS, CocoBoxAP
from networks.detection.centernet import CenterNet
from networks.detection.decoding import CenterNetDecoder, DecoderSettings, Detections
from networks.detection.losses import LossWeights, centernet_loss
from networks.detection.official import official_key_to_suite
from visionsuite.complexity import count_multiply_adds, count_parameters
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain
from visionsuite.official_weights import OfficialFormat

LOSS_PARTS = ("focal_tl", "focal_br", "focal_ct", "pull", "push", "offset")


def decoder_settings(values: Mapping[str, Any] | None) -> DecoderSettings:
    """:class:`DecoderSettings` from a config mapping, with an error naming any unknown key."""
    values = dict(plain(values) or {})
    known = {field.name for field in fields(DecoderSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"model.decoder has unknown key(s) {unknown}; known: {sorted(known)}.")
    if "scales" in values:
        values["scales"] = tuple(float(scale) for scale in values["scales"])
    try:
        return DecoderSettings(**values)
    except ValueError as error:
        raise ConfigError(f"model.decoder: {error}.") from None


class CenterNetDetector(SuiteModule):
    """CenterNet trained and evaluated as the paper does (see the module docstring).

    Args:
        net: The network, built (a preset of ``networks.detection.centernet``, injected by ``model.net``).
        num_classes: Object classes (80 for COCO); the network's and the dataset's category count.
        loss: The weights of Eq. 1 and the focal exponents (``model.loss``: pull 0.1, push 0.1, offset 1; 2, 4).
        decoder: :class:`DecoderSettings` values (top_k, flip, scales, soft-NMS...).
        num_visualized: Validation images drawn every validation (0: none).
        draw_score_threshold: Detections below this score are not drawn.
        input_size: Image side at which ``mode=summary`` counts multiply-adds.
        optimizer: Partial optimizer (bound to the parameters by the base).
        scheduler: Partial learning-rate scheduler.
        scheduler_interval: ``step`` (iteration schedules, as the paper's) or ``epoch``.
    """

    def __init__(
        self,
        net: CenterNet,
        num_classes: int,
        loss: LossWeights | None = None,
        decoder: Mapping[str, Any] | None = None,
        num_visualized: int = 4,
        draw_score_threshold: float = 0.3,
        input_size: int = 511,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "step",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/centernet104.yaml")
        if net.num_classes != num_classes:
            raise ConfigError(f"model.net.num_classes={net.num_classes} but model.num_classes={num_classes}; "
                              "set model.net.num_classes=${model.num_classes}.")
        settings = decoder_settings(decoder)
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "decoder", "net", "loss"])
        # the network actually trained (its constructor's values), recorded for loggers and checkpoints
        self.hparams.update({key: value for key, value in net.config.items()
                             if key not in ("num_classes", "in_channels")})
        self.hparams["decoder"] = asdict(settings)
        loss = loss or LossWeights()
        self.hparams["loss"] = asdict(loss)
        self.net = net
        self.loss_weights = loss
        self.decoder = CenterNetDecoder(settings)
        self.categories: list[dict[str, Any]] | None = None
        self.val_ap = CocoBoxAP()
        self.test_ap = CocoBoxAP()

    # ------------------------------------------------------------------------------------- model
    def forward(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Raw outputs: one dict per stack in training mode, the last stack only in eval mode."""
        return self.net(images)

    def _last_stack(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(images)[-1]

    def detect(self, batch: Mapping[str, Any]) -> list[Detections]:
        """Decoded detections (original-image pixels) of an evaluation batch."""
        return self.decoder(
            self._last_stack, batch["images"], batch["resize_factors"], batch["original_sizes"]
        )

    def official_format(self) -> OfficialFormat:
        """The official checkpoints (``CenterNet-52_480000.pkl``, ``CenterNet-104_480000.pkl``: the state dict of the
        model of Duankaiwen/CenterNet, ``module.`` on every key), converted by ``networks.detection.official``."""
        stacks = self.net.stacks
        name = {1: "CenterNet-52", 2: "CenterNet-104"}.get(stacks, f"CenterNet with {stacks} stacks")
        source = f"models/{name}.py" if stacks in (1, 2) else "models/py_utils/kp.py"
        return OfficialFormat(self.net, official_key_to_suite, f"{name} (Duankaiwen/CenterNet {source})")

    def configure_callbacks(self) -> list[pl.Callback]:
        """The writers of categories.json, validation pictures and ``mode=predict`` outputs."""
        return [DetectionPictures(self.hparams.num_visualized), DetectionPredictionWriter()]

    # -------------------------------------------------------------------------------- categories
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage != "predict" and datamodule is not None and hasattr(datamodule, "load_categories"):
            self.categories = [dict(c) for c in datamodule.load_categories()]
            if len(self.categories) != self.hparams.num_classes:
                raise ConfigError(
                    f"model.num_classes={self.hparams.num_classes} but the dataset has "
                    f"{len(self.categories)} categories; set data.num_classes={len(self.categories)} (the model "
                    "follows it) and remove the model.num_classes override."
                )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["categories"] = self.categories

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("categories"):
            self.categories = [dict(c) for c in checkpoint["categories"]]

    def category_table(self) -> list[dict[str, Any]]:
        """``[{"id", "name"}]`` in class-index order (placeholders ``class_k`` before the dataset is known)."""
        if self.categories is not None:
            return self.categories
        return [{"id": index + 1, "name": f"class_{index + 1}"} for index in range(self.hparams.num_classes)]

    # ---------------------------------------------------------------------------------- training
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        outputs = self.net(batch["images"])
        targets = batch["targets"]
        if outputs[0]["tl_heatmap"].shape != targets["tl_heatmap"].shape:
            raise ConfigError(
                f"The network outputs {tuple(outputs[0]['tl_heatmap'].shape)} heatmaps but the targets are "
                f"{tuple(targets['tl_heatmap'].shape)}: data.output_stride must be 4 (the Hourglass stride) and "
                "model.num_classes the dataset's category count."
            )
        parts = centernet_loss(outputs, targets, self.loss_weights)
        ensure_finite(parts["loss"], "training loss", self.current_epoch, self.global_step)
        batch_size = len(batch["images"])
        self.log("train/loss", parts["loss"], prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log_dict({f"train/{name}": parts[name].detach() for name in LOSS_PARTS}, on_step=True,
                      on_epoch=False, batch_size=batch_size)
        return parts["loss"]

    # ------------------------------------------------------------------------ validation / test
    def on_validation_epoch_start(self) -> None:
        self._prepare_metric(self.val_ap, "val")

    def on_test_epoch_start(self) -> None:
        self._prepare_metric(self.test_ap, "test")

    def _prepare_metric(self, metric: CocoBoxAP, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "ground_truth"):
            raise ConfigError(
                f"{stage}: the datamodule has no COCO ground truth (ground_truth(stage)) to evaluate with."
            )
        metric.reset()
        metric.ground_truth = datamodule.ground_truth(stage)
        metric.category_ids = [category["id"] for category in self.category_table()]

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> list[Detections] | None:
        return self._evaluate_batch(batch, self.val_ap)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> list[Detections] | None:
        return self._evaluate_batch(batch, self.test_ap)

    def _evaluate_batch(self, batch: Mapping[str, Any], metric: CocoBoxAP) -> list[Detections] | None:
        if self.trainer.sanity_checking:
            return None  # an untrained model decodes to noise: skip the (slow) decoding in the sanity check
        detections = self.detect(batch)
        metric.update(detections, batch["image_ids"])
        return detections

    def on_validation_epoch_end(self) -> None:
        self._log_metric(self.val_ap, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metric(self.test_ap, "test")

    def _log_metric(self, metric: CocoBoxAP, stage: str) -> None:
        if self.trainer.sanity_checking:
            return
        values = metric.compute()
        for name in COCO_METRICS:
            self.log(f"{stage}/{name}", values[name], prog_bar=name in ("AP", "AP50"))
        metric.reset()

    # -------------------------------------------------------------------------------- prediction
    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[Detections]:
        """Detections of every image of ``batch`` (written by :class:`DetectionPredictionWriter`)."""
        return self.detect(batch)

    def size_report(self) -> dict[str, float]:
        """Parameters (all stacks' heads included) and multiply-adds of one ``input_size`` image (eval mode)."""
        example = self.example_input()
        return {
            "params_m": round(count_parameters(self.net) / 1e6, 3),
            "madds_g": round(count_multiply_adds(_LastStack(self.net), example) / 1e9, 2),
            "input_size": int(example.shape[-1]),
            "stacks": self.net.stacks,
        }


class _LastStack(torch.nn.Module):
    """The network as a plain tensor-to-tuple function (what fvcore traces)."""

    def __init__(self, net: CenterNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(images)[-1].values())
