"""Metric-learning person re-ID: MCNL (arXiv:1909.10848) and its batch-hard triplet baseline in one module.

Training (Sec. 3-4.1): features of a camera-aware (MCNL) or P x K (triplet) batch go through the injected
metric loss (:class:`networks.reid.losses.MCNLLoss` or :class:`~networks.reid.losses.BatchHardTripletLoss`);
no identity loss. Evaluation: each image's feature is averaged with that of its horizontally flipped copy
and L2-normalised; :class:`metrics.reid.ReIDEvaluator` gives rank-1/5/10 and mAP
(``val/`` on held-out training identities, ``test/`` on query vs gallery). ``mode=predict`` ranks the
gallery for the chosen queries; pictures and ranking files are written by
:class:`callbacks.reid.RetrievalPictures` from :attr:`ReIDModule.latest_ranking`.
``ckpt_path=<official checkpoint>`` evaluates a model trained by the official code
(:mod:`networks.reid.official`, :meth:`ReIDModule.official_format`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from metrics.reid import ReIDEvaluator
from networks.reid.official import DESCRIPTION, OfficialReIDKeys
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite
from visionsuite.official_weights import OfficialFormat


class ReIDModule(SuiteModule):
    """Re-ID training with a metric loss and retrieval evaluation (see the module docstring).

    Args:
        net: image -> feature network (e.g. :class:`networks.reid.embedding.ReIDEmbedding`).
        loss: ``loss(features, identities, cameras) -> scalar``.
        optimizer, scheduler, scheduler_interval: see :class:`visionsuite.module.SuiteModule`.
        flip_test: average test features with the flipped image's (Sec. 4.1).
        max_rank: length of the CMC curve.
        top_k: gallery items per query kept for the retrieval pictures.
        input_height, input_width: the input size ``mode=summary`` counts at (256 x 128 in the paper).
    """

    def __init__(self, net: nn.Module, loss: nn.Module, optimizer: OptimizerFactory | None = None,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "epoch",
                 flip_test: bool = True, max_rank: int = 50, top_k: int = 10, input_height: int = 256,
                 input_width: int = 128) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/mcnl_resnet50.yaml")
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"])
        self.net, self.loss = net, loss
        self.flip_test = flip_test
        self.evaluator = ReIDEvaluator(max_rank=max_rank, top_k=top_k, sync_on_compute=True)
        self.latest_ranking: dict[str, Any] | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, int(self.hparams.input_height), int(self.hparams.input_width))

    def size_report(self) -> dict[str, float]:
        report = super().size_report()
        report["input_size"] = f"{self.hparams.input_height}x{self.hparams.input_width}"
        return report

    def official_format(self) -> OfficialFormat:
        """An official MCNL / triplet checkpoint (``N_checkpoint_epN.pth.tar`` of the official code) loads into
        :attr:`net` through :class:`networks.reid.official.OfficialReIDKeys`."""
        return OfficialFormat(network=self.net, convert_key=_OfficialConverter(), description=DESCRIPTION)

    # ------------------------------------------------------------------------------ training
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        features = self.net(batch["image"])
        loss = self.loss(features, batch["identity"], batch["camera"])
        ensure_finite(loss, "re-ID metric loss", self.current_epoch, self.global_step)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(features))
        return loss

    # ------------------------------------------------------------------------------ evaluation
    def test_features(self, images: torch.Tensor) -> torch.Tensor:
        """Features averaged with the horizontally flipped image's and L2-normalised (Sec. 4.1). The official
        evaluation (framework/evaluators/frame_evaluator.py) sums instead of averaging: the same direction, and
        halving is exact in floating point, so the normalised features are equal."""
        features = self.net(images)
        if self.flip_test:
            features = (features + self.net(torch.flip(images, dims=[3]))) / 2
        return F.normalize(features, dim=1)

    def _evaluate_batch(self, batch: Mapping[str, Any]) -> None:
        self.evaluator.update(self.test_features(batch["image"]), batch["identity"], batch["camera"],
                              batch["is_query"], batch["index"])

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate_batch(batch)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate_batch(batch)

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate_batch(batch)

    def on_validation_epoch_start(self) -> None:
        self.evaluator.reset()

    def on_test_epoch_start(self) -> None:
        self.evaluator.reset()

    def on_predict_epoch_start(self) -> None:
        self.evaluator.reset()

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def on_predict_epoch_end(self) -> None:
        try:
            scores = {name: float(value) for name, value in self.evaluator.compute().items()}
        except ValueError:  # none of the chosen queries has a match in the gallery: pictures only
            scores = {}
        self.latest_ranking = {"stage": "predict", "epoch": self.current_epoch, **self.evaluator.last_ranking,
                               "scores": scores}
        self.evaluator.reset()

    def _finish(self, stage: str) -> None:
        if self.trainer.sanity_checking:
            self.evaluator.reset()
            return
        scores = self.evaluator.compute()
        for name, value in scores.items():
            self.log(f"{stage}/{name}", value, prog_bar=name in ("rank1", "mAP"), sync_dist=False)
        self.latest_ranking = {"stage": stage, "epoch": self.current_epoch, **self.evaluator.last_ranking}
        self.evaluator.reset()



class _OfficialConverter(OfficialReIDKeys):
    """The official key converter, with advice naming the config keys and experiments for the files people mistake
    for an official MCNL checkpoint."""

    def advise(self, key: str) -> str | None:
        """What to do about ``key``, the first official key without a place (or network entry left empty)."""
        if key.startswith(("bottleneck.", "classifier.")):
            return ("The file has the official softmax baseline's bottleneck / classifier (main_reid.py "
                    "--model_name softmax); only the MCNL and triplet models (--model_name distance / triplet, "
                    "no classifier) are this network.")
        if key.startswith(("conv1.", "bn1.", "layer1.", "fc.")):
            return ("The file is in torchvision's ResNet-50 names (an ImageNet file such as resnet50-19c8e357.pth?): "
                    "start training from it with model.net.trunk.weights_path=<file>; ckpt_path= takes a model "
                    "trained by the official code (`base.` keys).")
        if key.startswith("base.layer"):
            return ("The official model is a ResNet-50: evaluate it with a ResNet-50 experiment (model=mcnl_resnet50, "
                    "e.g. experiment=mcnl_market_sct or triplet_market_sct), not the demo's reduced network.")
        return None


__all__ = ["ReIDModule"]
