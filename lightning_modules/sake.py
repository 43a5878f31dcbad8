"""SAKE: zero-shot sketch-based image retrieval with semantic-aware knowledge preservation (arXiv:1904.03208).

Two LightningModules:

* :class:`SakeModule`, the method: the student (CSE-ResNet + :class:`~networks.sbir.heads.SakeHeads`) learns the
  benchmark's seen classes from sketches and photos with cross-entropy, while on photos its ImageNet-head logits
  are distilled from a frozen copy of the pretrained network (the teacher) with the semantic-aware target of
  Sec. 3.3 (:class:`~networks.sbir.sake_loss.SakeLoss`): L = CE + lambda_SAKE * KD, target
  softmax(lambda_kd * z_teacher + lambda_sem * m_y). ``loss.sake_lambda=0`` is the paper's "without SAKE" ablation
  (Table 3). Retrieval uses the L2-normalised d-dim embedding (Sec. 4.1), scored by
  :class:`metrics.sbir.SbirRetrievalMetric`.
* :class:`SakeTeacherClassifier`, the demo's teacher: SAKE's teacher is the ImageNet-pretrained CSE-ResNet-50 with
  its 1000-way head; ImageNet weights cannot be fetched offline, so the demo first trains the (reduced) CSE-ResNet
  as a classifier of the seen classes on their photos (domain tag 1), and its checkpoint then starts both the
  frozen teacher and the student (``teacher_checkpoint``). The teacher's "1000 classes" are then the seen classes,
  and the demo's semantic mask is over them.

Teacher and student start from the same weights, as in the official training scripts (the teacher is
``cse_resnet50()`` with the ImageNet SE-ResNet-50 weights, the student's backbone the same weights):
``net.weights_path`` (Cadene's ``se_resnet50-ce0d4300.pth`` as downloaded, the paper) or ``teacher_checkpoint``
(a Lightning checkpoint whose ``net.*`` weights are a CSE-ResNet classifier; the demo trains one on the seen
photos first, since ImageNet weights are not available offline). The teacher is that network as loaded: a deep
copy of ``net`` taken before training, so it has the student's starting weights by construction. The student keeps
the backbone; the classifier it was loaded with initialises its heads (SVD) and is then dropped, as the official
student has no 2048 -> 1000 layer. SAKE's released ``model_best.pth.tar`` is read by
:meth:`SakeModule.official_format`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from datamodules.sbir.semantic_mask import load_semantic_mask
from metrics.sbir import SbirRetrievalMetric
from networks.sbir.cse_resnet import PHOTO, CSEResNet
from networks.sbir.heads import SakeHeads, SakeStudent
from networks.sbir.official import SAKE_STUDENT_DESCRIPTION, convert_sake_student_key
from networks.sbir.sake_loss import SakeLoss
from visionsuite.complexity import count_multiply_adds
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite
from visionsuite.official_weights import OfficialFormat

log = logging.getLogger(__name__)


#: Checkpoint format of the CSE-ResNet's parameter names (``SakeModule`` and ``SakeTeacherClassifier``).
NETWORK_FORMAT = 2
NETWORK_FORMAT_CHANGES = {
    2: "the CSE-ResNet follows the official Caffe SE-ResNet layout and names (layer0.conv1, layerN.i.conv1 with "
       "the stride, layerN.i.se_module.fc1/fc2, last_linear) instead of torchvision's (resnet.conv1, "
       "resnet.layerN.i.bn3.excitation.squeeze/excite, resnet.fc); the student no longer holds the unused "
       "2048 -> 1000 classifier",
}


def _load_network_from_checkpoint(net: torch.nn.Module, checkpoint: str | Path, key: str) -> None:
    """Fill ``net`` with the ``net.*`` entries of a Lightning checkpoint (one clear error otherwise)."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ConfigError(f"{key}={path}: no such checkpoint file.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("state_dict", {}) if isinstance(checkpoint, dict) else {}
    weights = {name[len("net."):]: value for name, value in state.items() if name.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        record = checkpoint.get("visionsuite", {}) if isinstance(checkpoint, dict) else {}
        hint = ""
        if int(record.get("format", 1)) < NETWORK_FORMAT:
            hint = (f" It was written in checkpoint format {record.get('format', 1)}, before the CSE-ResNet took the "
                    "official SE-ResNet layout (format 2): train the teacher again.")
        raise ConfigError(f"{key}={path} does not hold this network's weights (net.*):{hint} "
                          f"{str(error)[:300]}") from None


def _seen_label_lookup(datamodule: Any, num_classes: int) -> torch.Tensor:
    """class id (index into ``datamodule.class_names``) -> classifier output (seen classes), -1 for unseen."""
    seen = list(datamodule.seen_class_ids)
    if len(seen) != num_classes:
        raise ConfigError(f"model.num_classes={num_classes} but the data have {len(seen)} seen classes; set "
                          f"model.num_classes={len(seen)}.")
    lookup = torch.full((len(datamodule.class_names),), -1, dtype=torch.long)
    lookup[torch.tensor(seen)] = torch.arange(len(seen))
    return lookup


class SakeModule(SuiteModule):
    """SAKE's training, zero-shot evaluation and retrieval (see the module docstring).

    Args:
        net: the CSE-ResNet (its ``last_linear`` is the teacher's classifier: ImageNet's 1000 classes).
        heads: the student's heads (embedding of d dimensions, distillation head over ``net``'s classes, classifier
            over the ``num_classes`` seen classes), initialised here from ``net``'s classifier.
        loss: SAKE's objective with its weights (:class:`~networks.sbir.sake_loss.SakeLoss`).
        metric: a partial :class:`~metrics.sbir.SbirRetrievalMetric` (Prec@k, mAP@top, ITQ bits): the test
            metric; validation scores the same without ITQ codes.
        num_classes: seen (training) classes of the benchmark classifier.
        semantic_mask_path: ``.npy`` mask (all classes x teacher classes) or the official ``cid_mask.pickle``
            (with its ``cname_cid.txt``); ``None``: m_y = 0.
        teacher_checkpoint: Lightning checkpoint of a CSE-ResNet classifier to start teacher and student from.
        retrieval_top_k: photos kept per query sketch in ``mode=predict`` (10).
        input_size: image side (for ``mode=summary``).
        optimizer / scheduler / scheduler_interval: see :class:`~visionsuite.module.SuiteModule`.
    """

    CHECKPOINT_FORMAT = NETWORK_FORMAT
    CHECKPOINT_FORMAT_CHANGES = NETWORK_FORMAT_CHANGES

    def __init__(self, net: CSEResNet, heads: SakeHeads, loss: SakeLoss, metric: Callable[..., SbirRetrievalMetric],
                 num_classes: int, semantic_mask_path: str | None = None, teacher_checkpoint: str | None = None,
                 retrieval_top_k: int = 10, input_size: int = 224, optimizer: OptimizerFactory | None = None,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "epoch") -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/sake.yaml")
        self.save_hyperparameters(ignore=["net", "heads", "loss", "metric", "optimizer", "scheduler"])
        if (heads.distillation.out_features, heads.classifier.out_features) != (net.num_classes, num_classes):
            raise ConfigError(f"model.heads: teacher_classes={heads.distillation.out_features} and num_classes="
                              f"{heads.classifier.out_features} must be the network's classes ({net.num_classes}) and "
                              f"model.num_classes ({num_classes}); the default config interpolates both.")
        if teacher_checkpoint:
            _load_network_from_checkpoint(net, teacher_checkpoint, "model.teacher_checkpoint")
        self.teacher = copy.deepcopy(net).requires_grad_(False).eval()
        heads.initialise_from_classifier(net.remove_classifier())
        self.heads, self.net = heads, net  # the student's heads and backbone (state-dict order of earlier versions)
        self.loss = loss
        self.val_metric = metric(itq_bits=None)
        self.test_metric = metric()
        self._predicted: list[dict[str, Any]] = []
        self.retrievals: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        self.register_buffer("seen_label_of", _seen_label_lookup(datamodule, self.hparams.num_classes),
                             persistent=False)
        teacher_classes = self.teacher.num_classes
        rows = torch.zeros(len(datamodule.class_names), teacher_classes)
        mask_path = self.hparams.semantic_mask_path
        if mask_path:
            if not Path(mask_path).is_file():
                raise ConfigError(f"model.semantic_mask_path={mask_path}: no such file. Use the official cid_mask.pickle "
                                  "of SAKE's dataset.zip, compute a mask with `python -m "
                                  "datamodules.sbir.semantic_mask` (needs WordNet, see docs/sake.md) or set "
                                  "model.semantic_mask_path=null to train without the semantic term.")
            seen = [datamodule.class_names[index] for index in datamodule.seen_class_ids]
            rows = torch.from_numpy(load_semantic_mask(mask_path, datamodule.class_names, teacher_classes,
                                                       required=seen))
        elif self.loss.distils and self.loss.lambda_sem > 0:
            log.warning("model.semantic_mask_path is not set: the SAKE target uses m_y = 0 (teacher logits only).")
        self.register_buffer("semantic_rows", rows[torch.tensor(datamodule.seen_class_ids)], persistent=False)
        self.class_names = list(datamodule.class_names)

    def train(self, mode: bool = True) -> SakeModule:
        super().train(mode)
        self.teacher.eval()  # frozen: its BatchNorm statistics never move
        return self

    def optimizer_parameters(self) -> list[torch.nn.Parameter]:
        return [*self.net.parameters(), *self.heads.parameters()]

    def official_format(self) -> OfficialFormat:
        """SAKE's ``model_best.pth.tar`` (its student, ``module.``-prefixed) -> ``net`` and ``heads``; the teacher is
        not in that file and stays as built (it is needed for training only)."""
        return OfficialFormat(SakeStudent(self.net, self.heads), convert_sake_student_key, SAKE_STUDENT_DESCRIPTION)

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, self.hparams.input_size, self.hparams.input_size)

    def size_report(self) -> dict[str, float]:
        """Trainable parameters of the student (CSE-ResNet backbone, embedding, distillation head, seen-class
        classifier: what the official student holds; the frozen teacher excluded) and multiply-adds of one
        photo's embedding."""
        parameters = sum(p.numel() for p in self.optimizer_parameters())
        madds = count_multiply_adds(_PhotoEmbedding(self), self.example_input())
        return {"params_m": round(parameters / 1e6, 4), "madds_m": round(madds / 1e6, 2),
                "input_size": self.hparams.input_size}

    # ------------------------------------------------------------------ steps
    def embed(self, images: torch.Tensor, domains: torch.Tensor) -> torch.Tensor:
        """The d-dim retrieval embedding (before L2 normalisation)."""
        return self.heads.embedding(self.net.features(images, domains))

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, domains = batch["image"], batch["domain"]
        labels = self.seen_label_of[batch["label"]]
        _embedding, student_teacher_logits, logits = self.heads(self.net.features(images, domains))
        photos = domains == PHOTO
        student_photo_logits = student_teacher_logits[photos]
        if self.loss.distils and bool(photos.any()):
            with torch.no_grad():
                teacher_logits = self.teacher(images[photos], PHOTO)
            targets = self.loss.targets(teacher_logits, self.semantic_rows[labels[photos]])
        else:
            student_photo_logits = student_photo_logits[:0]
            targets = student_photo_logits.detach()
        loss, cross_entropy, distillation = self.loss(logits, labels, student_photo_logits, targets)
        ensure_finite(loss, "SAKE loss", self.current_epoch, self.global_step)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        self.log_dict({"train/loss": loss, "train/ce": cross_entropy, "train/kd": distillation, "train/acc": accuracy},
                      prog_bar=True, batch_size=len(images))
        return loss

    def _evaluate(self, batch: Mapping[str, torch.Tensor], metric: SbirRetrievalMetric) -> None:
        metric.update(self.embed(batch["image"], batch["domain"]), batch["label"], batch["domain"])

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metric)

    def test_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metric)

    def _log_metric(self, metric: SbirRetrievalMetric, stage: str) -> None:
        self.log_dict({f"{stage}/{name}": value for name, value in metric.compute().items()}, prog_bar=True)
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_metric(self.val_metric, "val")

    def on_test_epoch_end(self) -> None:
        self._log_metric(self.test_metric, "test")

    # ------------------------------------------------------------------ mode=predict
    def on_predict_epoch_start(self) -> None:
        self._predicted = []
        self.retrievals = []

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        embeddings = F.normalize(self.embed(batch["image"], batch["domain"]), dim=1).cpu()
        for row, embedding in enumerate(embeddings):
            self._predicted.append({"embedding": embedding, "label": int(batch["label"][row]),
                                    "domain": int(batch["domain"][row]), "path": batch["path"][row]})

    def on_predict_epoch_end(self) -> None:
        """Rank the gallery photos for every query sketch; keep the top ``retrieval_top_k`` in ``retrievals``."""
        gallery = [item for item in self._predicted if item["domain"] == PHOTO]
        queries = [item for item in self._predicted if item["domain"] != PHOTO]
        if not gallery or not queries:
            return
        distances = torch.cdist(torch.stack([q["embedding"] for q in queries]),
                                torch.stack([g["embedding"] for g in gallery]))
        top_k = min(self.hparams.retrieval_top_k, len(gallery))
        values, indices = torch.topk(distances, top_k, dim=1, largest=False)
        names = getattr(self, "class_names", [])
        for query, row_distances, row in zip(queries, values.tolist(), indices.tolist(), strict=True):
            self.retrievals.append({
                "query": query["path"],
                "photos": [gallery[k]["path"] for k in row],
                "classes": [names[gallery[k]["label"]] if names else gallery[k]["label"] for k in row],
                "distances": [round(d, 5) for d in row_distances],
            })


class _PhotoEmbedding(torch.nn.Module):
    """images -> embedding under the photo tag (what ``mode=summary`` counts)."""

    def __init__(self, module: SakeModule) -> None:
        super().__init__()
        self.net, self.embedding = module.net, module.heads.embedding

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.net.features(images, PHOTO))


class SakeTeacherClassifier(SuiteModule):
    """The demo's teacher (see the module docstring): cross-entropy training of ``net`` (its ``last_linear`` over the
    seen classes) on seen-class photos.

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
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/sake_teacher_tiny.yaml")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net = net

    def setup(self, stage: str) -> None:
        self.register_buffer("seen_label_of", _seen_label_lookup(self.trainer.datamodule, self.hparams.num_classes),
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


__all__ = ["NETWORK_FORMAT", "NETWORK_FORMAT_CHANGES", "SakeModule", "SakeTeacherClassifier"]
