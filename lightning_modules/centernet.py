"""Training and evaluation of CenterNet, the keypoint-triplet detector (Duan et al., arXiv:1904.08189).

* Training: the loss of Eq. 1 (``networks.detection.losses``) on every stack's outputs, Adam (lr 2.5e-4,
  batch 48) for 480k iterations with the rate divided by 10 at 450k (official code); the schedule is stepped
  per iteration (``scheduler_interval: step``).
* Validation / test: the decoding of Sec. 3 and 4.2 (``networks.detection.decoding``; flip testing and
  optional multi-scale), scored with the official COCO protocol (pycocotools): ``{val,test}/{AP, AP50, AP75,
  APs, APm, APl}``. Every validation also draws the predictions on the first ``num_visualized`` images into
  ``<run dir>/visualizations/`` and sends the picture to loggers that take images (W&B, TensorBoard).
* Prediction (``mode=predict``): ``<run dir>/predictions/`` receives ``detections.json`` (COCO results format
  with the dataset's original category ids, plus each box's three keypoints), ``images.json`` (the image ids
  used there, COCO ``images`` format) and one picture per image with boxes and keypoints drawn.

The category table (original ids and names, in class-index order) is stored in checkpoints and written to
``<run dir>/categories.json``, so predictions of a checkpoint use the ids of the dataset it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from datamodules.detection_transforms import COCO_MEAN, COCO_STD
from lightning_modules.coco_evaluation import COCO_METRICS, coco_results, evaluate_coco, gather_results
from lightning_modules.detection_drawing import draw_detections, image_grid, tensor_to_image
from networks.detection.centernet import CENTERNET_BLOCKS, CENTERNET_CHANNELS, CenterNet
from networks.detection.decoding import CenterNetDecoder, DecoderSettings, Detections
from networks.detection.losses import LossWeights, centernet_loss
from visionsuite.complexity import count_multiply_adds, count_parameters
from visionsuite.errors import ConfigError
from visionsuite.io import atomic_write_json
from visionsuite.module import ensure_finite

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]
LOSS_PARTS = ("focal_tl", "focal_br", "focal_ct", "pull", "push", "offset")


def _plain(value: Any) -> Any:
    return (
        OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value
    )


def decoder_settings(values: Mapping[str, Any] | None) -> DecoderSettings:
    """:class:`DecoderSettings` from a config mapping, with an error naming any unknown key."""
    values = dict(_plain(values) or {})
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


class CenterNetDetector(pl.LightningModule):
    """CenterNet trained and evaluated as the paper does (see the module docstring).

    Args:
        num_classes: Object classes (80 for COCO); must equal the dataset's category count.
        stacks, channels, blocks, stem_channels, head_channels, pool_channels: The network
            (``networks.detection.centernet.CenterNet``; CenterNet-104: 2 stacks, CenterNet-52: 1).
        pull_weight, push_weight, offset_weight, focal_alpha, focal_beta: Loss weights (0.1, 0.1, 1; 2, 4).
        decoder: :class:`DecoderSettings` values (top_k, flip, scales, soft-NMS...).
        num_visualized: Validation images drawn every validation (0: none).
        draw_score_threshold: Detections below this score are not drawn.
        input_size: Image side at which ``mode=summary`` counts multiply-adds.
        optimizer: Partial optimizer (bound to the parameters here).
        scheduler: Partial learning-rate scheduler.
        scheduler_interval: ``step`` (iteration schedules, as the paper's) or ``epoch``.
    """

    def __init__(
        self,
        num_classes: int,
        stacks: int = 2,
        channels: Sequence[int] = CENTERNET_CHANNELS,
        blocks: Sequence[int] = CENTERNET_BLOCKS,
        stem_channels: int = 128,
        head_channels: int = 256,
        pool_channels: int = 128,
        pull_weight: float = 0.1,
        push_weight: float = 0.1,
        offset_weight: float = 1.0,
        focal_alpha: float = 2.0,
        focal_beta: float = 4.0,
        decoder: Mapping[str, Any] | None = None,
        num_visualized: int = 4,
        draw_score_threshold: float = 0.3,
        input_size: int = 511,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "step",
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("step", "epoch"):
            raise ConfigError(f"model.scheduler_interval={scheduler_interval!r}: use step or epoch.")
        channels, blocks = list(_plain(channels)), list(_plain(blocks))
        if len(channels) != len(blocks) or len(channels) < 2:
            raise ConfigError(
                f"model.channels {channels} and model.blocks {blocks} need the same length (>= 2)."
            )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"model.num_classes must be a positive integer, got {num_classes!r}.")
        settings = decoder_settings(decoder)
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "decoder"])
        self.hparams["channels"], self.hparams["blocks"] = channels, blocks
        self.hparams["decoder"] = asdict(settings)
        self.net = CenterNet(
            num_classes, stacks, channels, blocks, stem_channels, head_channels, pool_channels
        )
        self.loss_weights = LossWeights(pull_weight, push_weight, offset_weight, focal_alpha, focal_beta)
        self.decoder = CenterNetDecoder(settings)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.categories: list[dict[str, Any]] | None = None
        self.artifacts: dict[str, str] = {}
        self._records: dict[int, list[dict[str, Any]]] = {}
        self._pictures: list[Any] = []
        self._predicted_images: dict[int, list[dict[str, Any]]] = {}

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

    # -------------------------------------------------------------------------------- categories
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage != "predict" and datamodule is not None and hasattr(datamodule, "load_categories"):
            self.categories = [dict(c) for c in datamodule.load_categories()]
            if len(self.categories) != self.hparams.num_classes:
                raise ConfigError(
                    f"model.num_classes={self.hparams.num_classes} but the dataset has "
                    f"{len(self.categories)} categories; set model.num_classes={len(self.categories)}."
                )
        if stage == "fit" and self.categories is not None and self.trainer.is_global_zero:
            path = atomic_write_json(Path(self.trainer.default_root_dir) / "categories.json", self.categories)
            self.artifacts["categories"] = str(path)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["categories"] = self.categories

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if checkpoint.get("categories"):
            self.categories = [dict(c) for c in checkpoint["categories"]]

    def _category_table(self) -> list[dict[str, Any]]:
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
        self.log(
            "train/loss", parts["loss"], prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size
        )
        self.log_dict(
            {f"train/{name}": parts[name].detach() for name in LOSS_PARTS},
            on_step=True,
            on_epoch=False,
            batch_size=batch_size,
        )
        return parts["loss"]

    # ------------------------------------------------------------------------ validation / test
    def on_validation_epoch_start(self) -> None:
        self._reset_evaluation()

    def on_test_epoch_start(self) -> None:
        self._reset_evaluation()

    def _reset_evaluation(self) -> None:
        self._records, self._pictures = {}, []

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate_batch(batch, keep_pictures=True)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate_batch(batch, keep_pictures=False)

    def _evaluate_batch(self, batch: Mapping[str, Any], keep_pictures: bool) -> None:
        if self.trainer.sanity_checking:
            return  # an untrained model decodes to noise: skip the (slow) decoding in the sanity check
        detections = self.detect(batch)
        category_ids = [c["id"] for c in self._category_table()]
        for index, (image_detections, image_id) in enumerate(
            zip(detections, batch["image_ids"].tolist(), strict=True)
        ):
            self._records[int(image_id)] = coco_results(image_detections, image_id, category_ids)
            if keep_pictures and len(self._pictures) < self.hparams.num_visualized:
                self._pictures.append(
                    (
                        batch["images"][index].cpu(),
                        batch["original_sizes"][index].tolist(),
                        batch["resize_factors"][index].item(),
                        image_detections,
                    )
                )

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _finish_evaluation(self, stage: str) -> None:
        if self.trainer.sanity_checking:
            return
        per_image = gather_results(self._records)
        records = [record for image_records in per_image.values() for record in image_records]
        ground_truth = self._ground_truth(stage)
        if ground_truth is None:
            raise ConfigError(
                f"{stage}: the datamodule has no COCO ground truth (ground_truth(stage)) to evaluate with."
            )
        metrics = evaluate_coco(ground_truth, records, per_image.keys())
        for name in COCO_METRICS:
            self.log(f"{stage}/{name}", metrics[name], prog_bar=name in ("AP", "AP50"))
        if stage == "val" and self._pictures and self.trainer.is_global_zero:
            self._save_pictures()
        self._reset_evaluation()

    def _ground_truth(self, stage: str) -> Any:
        datamodule = getattr(self.trainer, "datamodule", None)
        return (
            datamodule.ground_truth(stage)
            if datamodule is not None and hasattr(datamodule, "ground_truth")
            else None
        )

    def _normalisation(self) -> tuple[Sequence[float], Sequence[float]]:
        transform = getattr(getattr(self.trainer, "datamodule", None), "eval_transform", None)
        return getattr(transform, "mean", COCO_MEAN), getattr(transform, "std", COCO_STD)

    def _picture(
        self, image: torch.Tensor, original_size: Sequence[float], factor: float, detections: Detections
    ) -> Any:
        mean, std = self._normalisation()
        size = (round(original_size[0] * factor), round(original_size[1] * factor))
        picture = tensor_to_image(image, mean, std, size)
        if factor != 1.0:
            picture = picture.resize((round(original_size[1]), round(original_size[0])))
        names = [str(c["name"]) for c in self._category_table()]
        return draw_detections(picture, detections, names, self.hparams.draw_score_threshold)

    def _save_pictures(self) -> None:
        grid = image_grid([self._picture(*entry) for entry in self._pictures])
        folder = Path(self.trainer.default_root_dir) / "visualizations"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"val_epoch{self.current_epoch:03d}_step{self.global_step:07d}.png"
        grid.save(path)
        self.artifacts["visualizations"] = str(folder)
        for logger in self.loggers:
            if hasattr(logger, "log_image"):  # W&B (and other loggers with the same method)
                logger.log_image(key="val/predictions", images=[grid], step=self.global_step)
            elif hasattr(getattr(logger, "experiment", None), "add_image"):  # TensorBoard
                array = torch.from_numpy(np.asarray(grid)).permute(2, 0, 1)
                logger.experiment.add_image("val/predictions", array, self.global_step)

    # -------------------------------------------------------------------------------- prediction
    def on_predict_epoch_start(self) -> None:
        self._records, self._predicted_images = {}, {}
        self._prediction_dir().mkdir(parents=True, exist_ok=True)

    def _prediction_dir(self) -> Path:
        return Path(self.trainer.default_root_dir) / "predictions"

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        detections = self.detect(batch)
        table = self._category_table()
        category_ids = [c["id"] for c in table]
        folder = self._prediction_dir()
        for index, image_detections in enumerate(detections):
            image_id = int(batch["image_ids"][index])
            file_name = batch["file_names"][index]
            height, width = (int(v) for v in batch["original_sizes"][index].tolist())
            self._records[image_id] = coco_results(
                image_detections, image_id, category_ids, with_keypoints=True
            )
            self._predicted_images[image_id] = [
                {"id": image_id, "file_name": file_name, "height": height, "width": width}
            ]
            picture = self._picture(
                batch["images"][index].cpu(),
                (height, width),
                float(batch["resize_factors"][index]),
                image_detections,
            )
            picture.save(folder / f"{Path(file_name).stem}.png")

    def on_predict_epoch_end(self) -> None:
        per_image = gather_results(self._records)
        records = [record for image_id in sorted(per_image) for record in per_image[image_id]]
        images = [entry for entries in gather_results(self._predicted_images).values() for entry in entries]
        if not self.trainer.is_global_zero:
            return
        folder = self._prediction_dir()
        detections_path = atomic_write_json(folder / "detections.json", records)
        atomic_write_json(
            folder / "images.json",
            {"images": sorted(images, key=lambda i: i["id"]), "categories": self._category_table()},
        )
        self.artifacts.update({"predictions": str(folder), "detections": str(detections_path)})

    # ------------------------------------------------------------------------------- optimisation
    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ConfigError(
                "model.optimizer is not set: give a partial optimizer (see conf/model/centernet104.yaml)."
            )
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval},
        }

    def size_report(self) -> dict[str, float]:
        """Parameters (all stacks' heads included) and multiply-adds of one ``input_size`` image (eval mode)."""
        size = self.hparams.input_size
        example = torch.zeros(1, 3, size, size)
        return {
            "params_m": round(count_parameters(self.net) / 1e6, 3),
            "madds_g": round(count_multiply_adds(_LastStack(self.net), example) / 1e9, 2),
            "input_size": size,
            "stacks": self.hparams.stacks,
        }


class _LastStack(torch.nn.Module):
    """The network as a plain tensor-to-tuple function (what fvcore traces)."""

    def __init__(self, net: CenterNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(images)[-1].values())
