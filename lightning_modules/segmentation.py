"""Training and evaluation of volumetric segmentation networks: the thickened 2D network (Yu et al.,
arXiv:1904.01150), the plain 2D network it improves on and the MONAI 3D baselines (UNet, DynUNet).

* Training: the injected ``loss`` (MONAI's ``DiceCELoss``: Dice over the foreground classes and the batch +
  cross-entropy) on random slice stacks (2D networks: the label of the centre slice) or 3D patches
  (``datamodules.volumes.samples``).
* Validation / test: every case is segmented whole by the ``inference`` object
  (``networks.segmentation.inference.VolumeInferer``: slice by slice in batches along its ``axes``, probabilities
  averaged over axes; MONAI's sliding windows for 3D), brought back to the label file's grid, and scored by Dice per
  class per case (``metrics.segmentation.CaseDice``): ``{val,test}/dice_<class>`` and
  ``{val,test}/dice_mean``; the test also logs ``test/dice/<case>/<class>`` (the per-case table of
  ``result.json``). A few slices (label and prediction overlaid) are kept at each validation for
  ``SegmentationOutputs`` (the callback this module declares) to draw.
* Prediction (``mode=predict``): each volume's label map on its own grid, written by ``SegmentationOutputs`` as
  NIfTI with the input's affine and header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from monai.losses import DiceCELoss
from torch import nn

from callbacks.segmentation import SegmentationOutputs, most_foreground_slice
from datamodules.volumes.preprocessing import resample
from metrics.segmentation import CaseDice
from networks.segmentation.inference import VolumeInferer
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain


class VolumeSegmenter(SuiteModule):
    """A segmentation network trained on slice stacks or patches and evaluated on whole volumes.

    Args:
        net: The network (``input_kind`` ``slices``: ``ThickenedUNet2D``; ``volume``: ``UNet3D``, ``DynUNet3D``).
        num_classes: Classes including background (the dataset's).
        loss: MONAI's ``DiceCELoss`` on logits and ``(B, 1, *spatial)`` class indices (its Dice and cross-entropy
            terms are logged apart).
        class_names: Names in class order, used in metric names (default: the datamodule's, else class_<i>).
        inference: Whole-volume inference (axes, slices per forward pass, 3D windows); default settings if None.
        num_visualized: Validation cases drawn each validation.
        num_predicted_slices: Slices drawn per volume in ``mode=predict``.
        input_size: In-plane side of the example input ``mode=summary`` measures.
        optimizer, scheduler, scheduler_interval: See :class:`SuiteModule`.
    """

    #: Parameter layout of the checkpoints (``visionsuite.checkpoint_files``): a checkpoint of another format
    #: stops with one message instead of a state-dict key mismatch. The 3D networks' format; the 2D networks'
    #: layout never changed, so a module holding one reads and writes format 1 (set per instance).
    CHECKPOINT_FORMAT = 2
    CHECKPOINT_FORMAT_CHANGES = {
        2: "the 3D U-Net baseline is MONAI's UNet (net.model.*, residual units) instead of the suite's own "
           "(net.encoder.* / net.decoder.*), 2026-12-06",
    }
    SLICE_NETWORK_FORMAT = 1

    def __init__(self, net: nn.Module, num_classes: int, loss: DiceCELoss, class_names: Sequence[str] | None = None,
                 inference: VolumeInferer | None = None,
                 num_visualized: int = 2, num_predicted_slices: int = 3, input_size: int = 96,
                 optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None,
                 scheduler_interval: str = "epoch") -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/volume_segmenter.yaml")
        if getattr(net, "num_classes", num_classes) != num_classes:
            raise ConfigError(f"model.net.num_classes={net.num_classes} but model.num_classes={num_classes}.")
        if getattr(net, "input_kind", None) not in ("slices", "volume"):
            raise ConfigError(f"model.net ({type(net).__name__}) must have input_kind slices or volume.")
        if net.input_kind == "slices":
            self.CHECKPOINT_FORMAT = self.SLICE_NETWORK_FORMAT
        self.save_hyperparameters(ignore=["net", "loss", "inference", "optimizer", "scheduler"])
        self.hparams["class_names"] = plain(class_names)
        self.net = net
        self.inference = inference or VolumeInferer()
        self.loss = loss
        self.val_dice, self.test_dice = CaseDice(num_classes), CaseDice(num_classes)
        self.case_ids: dict[int, str] = {}
        self.overlays: list[dict[str, Any]] = []
        self.case_table: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------- basics
    def configure_callbacks(self) -> list[pl.Callback]:
        """The writer of this module's pictures, Dice table and predicted NIfTI volumes (``SegmentationOutputs``)."""
        return [SegmentationOutputs(self.hparams.num_predicted_slices)]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)

    def class_names(self) -> list[str]:
        names = self.hparams.get("class_names")
        if not names and self._trainer is not None:
            names = getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        names = list(names or [])
        if len(names) != self.hparams.num_classes:
            names = ["background", *[f"class_{i}" for i in range(1, self.hparams.num_classes)]]
        return [str(n).lower().replace(" ", "_") for n in names]

    def example_input(self) -> torch.Tensor:
        size = int(self.hparams.input_size)
        if self.net.input_kind == "volume":
            return torch.zeros(1, 1, size, size, size)
        return torch.zeros(1, int(self.net.num_slices), size, size)

    def drawn_axis(self) -> int:
        """The axis pictures are drawn along: the first inference axis of 2D networks, Z for 3D networks."""
        return self.inference.axes[0] if self.net.input_kind == "slices" else 2

    def segment(self, image: torch.Tensor, original_shape: Sequence[int]) -> torch.Tensor:
        """Class probabilities ``(C, *original_shape)`` of one preprocessed volume (see the module docstring)."""
        probabilities = self.inference(image, self.net)
        return resample(probabilities, tuple(original_shape), is_label=False)

    # ----------------------------------------------------------------------------------------- training
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.net.input_kind == "slices" and batch["image"].shape[1] != self.net.num_slices:
            raise ConfigError(f"The network takes {self.net.num_slices} slices (model.net.context_slices="
                              f"{self.net.context_slices}) but got {batch['image'].shape[1]}; set data.context_slices "
                              "to the same k.")
        logits = self.net(batch["image"])
        if logits.shape[2:] != batch["label"].shape[1:]:
            raise ConfigError(f"The network outputs {tuple(logits.shape[2:])} maps for {tuple(batch['label'].shape[1:])} "
                              f"labels: data.crop_size / data.patch_size must be multiples of {self.net.divisor}.")
        logits, target = logits.float(), batch["label"][:, None].long()
        loss = self.loss(logits, target)
        ensure_finite(loss, "training loss", self.current_epoch, self.global_step)
        size = len(batch["image"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        with torch.no_grad():  # the two terms DiceCELoss weighs (lambda_dice, lambda_ce), for the curves
            terms = {"train/dice_loss": self.loss.dice(logits, target), "train/ce_loss": self.loss.ce(logits, target)}
        self.log_dict(terms, on_step=False, on_epoch=True, batch_size=size)
        return loss

    # --------------------------------------------------------------------------------- validation / test
    def on_validation_epoch_start(self) -> None:
        self.overlays = []

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        prediction = self._evaluate(batch, self.val_dice)
        if len(self.overlays) < self.hparams.num_visualized:
            self.overlays.append(self._overlay(batch, prediction))

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_dice)

    def _evaluate(self, batch: Mapping[str, Any], metric: CaseDice) -> torch.Tensor:
        if batch.get("label") is None:
            raise ConfigError(f"Case {batch['case_id']} has no label: validation and test need labelled cases.")
        prediction = self.segment(batch["image"], batch["original_shape"]).argmax(0)
        metric.update(prediction, batch["label"].to(prediction.device), batch["case_index"])
        self.case_ids[int(batch["case_index"])] = str(batch["case_id"])
        return prediction

    def _overlay(self, batch: Mapping[str, Any], prediction: torch.Tensor) -> dict[str, Any]:
        """The slice (along the first inference axis) with the most labelled voxels, as numpy arrays."""
        axis = self.drawn_axis()
        label = batch["label"].cpu().numpy()
        index = most_foreground_slice(label, axis)
        image = resample(batch["image"].float(), tuple(batch["original_shape"]), is_label=False)
        take = lambda volume: np.take(volume, index, axis=axis)  # noqa: E731
        return {"case_id": str(batch["case_id"]), "axis": axis, "slice": index, "image": take(image.cpu().numpy()),
                "label": take(label), "prediction": take(prediction.cpu().numpy())}

    def on_validation_epoch_end(self) -> None:
        self._log_dice("val", self.val_dice)

    def on_test_epoch_end(self) -> None:
        result = self._log_dice("test", self.test_dice, keep_table=True)
        names = self.class_names()[1:]
        for row in result:
            for name in names:
                if row[name] == row[name]:  # not NaN
                    self.log(f"test/dice/{row['case_id']}/{name}", row[name])

    def _log_dice(self, stage: str, metric: CaseDice, keep_table: bool = False) -> list[dict[str, Any]]:
        values = metric.compute()
        metric.reset()
        names = self.class_names()[1:]
        # torchmetrics squeezes one-element outputs: restore the (cases, classes) / (classes,) shapes
        per_case, indices = values["per_case"].reshape(-1, len(names)), values["case_index"].reshape(-1)
        for name, value in zip(names, values["per_class"].reshape(-1).tolist(), strict=True):
            self.log(f"{stage}/dice_{name}", float(value), sync_dist=False)
        self.log(f"{stage}/dice_mean", float(values["mean"]), prog_bar=True, sync_dist=False)
        table = [{"case_id": self.case_ids.get(int(index), f"case_{int(index)}"),
                  **{name: float(score) for name, score in zip(names, scores.tolist(), strict=True)}}
                 for index, scores in zip(indices.tolist(), per_case, strict=True)]
        if keep_table:
            self.case_table = sorted(table, key=lambda row: row["case_id"])
        return table

    # ---------------------------------------------------------------------------------------- prediction
    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """The label map of one volume on its file's grid, with what the writer needs (affine, header, path)."""
        prediction = self.segment(batch["image"], batch["original_shape"]).argmax(0).to(torch.uint8).cpu()
        image = resample(batch["image"].float(), tuple(batch["original_shape"]), is_label=False).cpu()
        return {"case_id": batch["case_id"], "image_path": batch["image_path"], "prediction": prediction,
                "image": image, "affine": batch["affine"], "header": batch["header"],
                "axis": self.drawn_axis()}
