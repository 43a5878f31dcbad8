"""The defender phase and the evaluate phase of the logit defense (Li, Xie et al., arXiv:1906.10973).

Training (Sec. 3 of the paper; values of the authors' code): every sample is the clean logit vector with
probability 0.5, else its adversarial logit vector, and the defender (a two-layer MLP on logits,
:class:`~networks.defense.logit_defender.LogitDefender`) learns to map it to the true label with cross
entropy; Adam, learning rate 1e-4, weight decay 1e-4, batch 256, 50 epochs. One defender is trained per
attack of the logit dataset (a :class:`~networks.defense.logit_defender.DefenderBank`), independently, so the
test gives the full transfer matrix (defender trained on attack A, evaluated on attack B).

Testing (the evaluate phase, ``mode=test`` on the defender checkpoint): accuracy of the classifier alone and
of classifier + each defender, on clean logits and under each attack (:class:`DefenseAccuracy`), and, when
the classifier and the test images are given, an adaptive white-box attack through classifier + defender
(:class:`AdaptiveAccuracy`). ``mode=predict`` corrects the logits of a saved file: no image is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from datamodules.logit_attack_data import normalization_of
from datamodules.logit_dataset import read_manifest
from lightning_modules.logit_defense_classifier import (
    classifier_identity,
    load_classifier,
    warn_if_other_classifier,
)
from lightning_modules.logit_defense_metrics import AdaptiveAccuracy, DefenseAccuracy
from networks.defense.attacks import build_attack, validate_attack_spec
from networks.defense.logit_defender import DEFENDER_DROPOUT, DEFENDER_HIDDEN, DefenderBank
from networks.defense.normalized import NormalizedClassifier
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain

#: Probability that a training sample is the clean logit (else the adversarial one), as in the paper's code.
CLEAN_PROBABILITY = 0.5


class LogitDefenseModule(SuiteModule):
    """Trains one logit defender per attack; tests them on every attack; corrects saved logits.

    Args:
        num_classes: C; None takes it from the logit dataset ``logit_dir``.
        attack_names: The attacks to train a defender on; None: every attack of ``logit_dir``.
        logit_dir: The logit dataset (only read here for the two defaults above).
        hidden: Hidden width of each defender (2048).
        dropout: Dropout of each defender (0.5).
        clean_probability: Probability that a training sample is the clean logit (0.5).
        optimizer, scheduler, scheduler_interval: see :class:`~visionsuite.module.SuiteModule`.
        classifier: The classifier entry (for the adaptive attack and the identity check); None skips both.
        adaptive_attack: The attack entry of the white-box attack through classifier + defender; None skips it.
    """

    def __init__(self, num_classes: int | None = None, attack_names: Sequence[str] | None = None,
                 logit_dir: str | None = None, hidden: int = DEFENDER_HIDDEN, dropout: float = DEFENDER_DROPOUT,
                 clean_probability: float = CLEAN_PROBABILITY, optimizer: OptimizerFactory | None = None,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "epoch",
                 classifier: Mapping[str, Any] | None = None, adaptive_attack: Mapping[str, Any] | None = None) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/logit_defender.yaml")  # type: ignore[arg-type]
        if not 0.0 <= float(clean_probability) <= 1.0:
            raise ConfigError(f"model.clean_probability must be in [0, 1], got {clean_probability!r}.")
        classifier, adaptive_attack = plain(classifier), plain(adaptive_attack)  # plain containers in checkpoints
        attack_names = None if attack_names is None else [str(name) for name in attack_names]
        manifest = read_manifest(logit_dir) if logit_dir and (num_classes is None or attack_names is None) else {}
        num_classes = int(num_classes if num_classes is not None else manifest.get("num_classes", 0)) or None
        attack_names = list(attack_names if attack_names is not None else manifest.get("attack_names", []))
        self.save_hyperparameters(logger=False, ignore=["optimizer", "scheduler", "logit_dir"])
        self.hparams.num_classes = num_classes
        self.hparams.attack_names = attack_names
        self.classifier_spec = dict(plain(classifier)) if classifier and classifier.get("checkpoint") else None
        self.adaptive_spec = dict(plain(adaptive_attack)) if adaptive_attack else None
        if self.adaptive_spec is not None:
            validate_attack_spec(self.adaptive_spec, "model.adaptive_attack")
        self.net: DefenderBank | None = None
        if num_classes and attack_names:
            self._build(num_classes, attack_names)
        self.evaluation: dict[str, Any] = {}
        # The classifier of the adaptive attack is not a submodule: it is no part of the defender's checkpoint.
        self._classifier: list[torch.nn.Module] = []

    def _build(self, num_classes: int, attack_names: Sequence[str]) -> None:
        self.net = DefenderBank(attack_names, num_classes, int(self.hparams.hidden), float(self.hparams.dropout))

    # ------------------------------------------------------------------ checkpoints and set-up
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Build the defenders the checkpoint holds (``mode=predict`` on a logit file needs no dataset)."""
        stored = checkpoint.get("hyper_parameters", {})
        classes, names = stored.get("num_classes"), list(stored.get("attack_names") or [])
        mine = self.hparams.num_classes
        if mine is not None and classes is not None and int(classes) != int(mine):
            raise ConfigError(f"The defender checkpoint has {classes} classes but the logits here have {mine}; use a "
                              "defender trained on the logits of this classifier.")
        if self.net is None or list(self.net.attack_names) != names:
            self.hparams.num_classes, self.hparams.attack_names = int(classes), names
            self._build(int(classes), names)
            self.net.to(self.device)  # type: ignore[union-attr]

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.net is None and stage != "predict":
            raise ConfigError("The defender does not know its attacks: set data.logit_dir (or model.attack_names "
                              "and model.num_classes).")
        if stage in ("fit", "validate") and datamodule is not None:
            missing = [name for name in self.hparams.attack_names if name not in datamodule.attack_names]
            if missing:
                raise ConfigError(f"The logit dataset {datamodule.logit_dir} has no attack {missing}; it has "
                                  f"{datamodule.attack_names}. Train on attacks it holds (model.attack_names).")
        if stage in ("fit", "validate", "test") and datamodule is not None:
            self.source_names = list(datamodule.attack_names)
            self.val_metric = DefenseAccuracy(self.hparams.attack_names, self.source_names)
            self.test_metric = DefenseAccuracy(self.hparams.attack_names, self.source_names)
            self.adaptive_metric = AdaptiveAccuracy(self.hparams.attack_names)
            if self.classifier_spec is not None:
                warn_if_other_classifier(datamodule.manifest.get("classifier", {}),
                                         classifier_identity(self.classifier_spec), str(datamodule.logit_dir))
        if stage == "test" and self.classifier_spec is not None and self.adaptive_spec is not None:
            images = getattr(datamodule, "images", None)
            if images is not None:
                self._classifier = [load_classifier(self.classifier_spec, "model.classifier")]
                self.normalization = normalization_of(images)

    # ------------------------------------------------------------------ training (Sec. 3)
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        assert self.net is not None
        clean, label = batch["clean"], batch["label"]
        adv = batch["adv"][:, [self.source_names.index(name) for name in self.net.attack_names]]  # (B, K, C)
        count, batch_size = len(self.net.attack_names), len(label)
        keep_clean = torch.rand(count, batch_size, 1, device=clean.device) < float(self.hparams.clean_probability)
        inputs = torch.where(keep_clean, clean.unsqueeze(0).expand(count, -1, -1), adv.transpose(0, 1))
        outputs = self.net.forward_each(inputs)
        losses = F.cross_entropy(outputs.flatten(0, 1), label.repeat(count), reduction="none").view(count, -1).mean(1)
        loss = losses.sum()  # the defenders share nothing: the sum trains each on its own loss
        ensure_finite(loss, "defender loss", self.current_epoch, self.global_step)
        self.log("train/loss", losses.mean(), prog_bar=True, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    def _all_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(1 + K, 1 + S, N, C)``: the classifier's and each defender's logits on clean and each source."""
        assert self.net is not None
        sources = torch.cat([batch["clean"].unsqueeze(0), batch["adv"].transpose(0, 1)])  # (1 + S, N, C)
        flat = sources.flatten(0, 1)
        defended = self.net(flat).view(len(self.net.attack_names), *sources.shape)
        return torch.cat([sources.unsqueeze(0), defended])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.val_metric.update(self._all_logits(batch), batch["label"])

    def on_validation_epoch_end(self) -> None:
        table = self.val_metric.as_table()
        self.val_metric.reset()
        names = self.hparams.attack_names
        clean = sum(table[name]["clean"] for name in names) / len(names)
        adversarial = sum(table[name][name] for name in names) / len(names)
        # What each defender is trained for: half clean, half its own attack.
        self.log_dict({"val/acc": (clean + adversarial) / 2, "val/clean_acc": clean, "val/adv_acc": adversarial,
                       "val/undefended_clean_acc": table["undefended"]["clean"]}, prog_bar=True)

    # ------------------------------------------------------------------ evaluation
    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.test_metric.update(self._all_logits(batch), batch["label"])
        if self._classifier and "image" in batch:
            self.adaptive_metric.update(self._adaptive_predictions(batch["image"], batch["label"]), batch["label"])

    def _adaptive_predictions(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(K, N)`` predictions of classifier + defender ``k`` on images attacked through both."""
        assert self.net is not None and self._classifier and self.adaptive_spec is not None
        classifier = self._classifier[0].to(self.device).eval()
        predictions = []
        for name in self.net.attack_names:
            defended = NormalizedClassifier(classifier, *self.normalization, head=self.net[name]).eval()
            attack = build_attack(self.adaptive_spec, defended, "model.adaptive_attack", device=self.device)
            with torch.inference_mode(False), torch.enable_grad():
                adv_images = attack(images.clone(), labels.clone())
            with torch.no_grad():
                predictions.append(defended(adv_images).argmax(1))
        return torch.stack(predictions)

    def on_test_epoch_end(self) -> None:
        table = self.test_metric.as_table()
        self.test_metric.reset()
        metrics = {f"test/{row}/{column}": value for row, values in table.items() for column, value in values.items()}
        adaptive: dict[str, float] = {}
        if int(self.adaptive_metric.total) > 0:
            adaptive = dict(zip(self.hparams.attack_names, self.adaptive_metric.compute().tolist(), strict=True))
            metrics.update({f"test/adaptive/{name}": value for name, value in adaptive.items()})
        self.adaptive_metric.reset()
        self.log_dict(metrics)
        self.evaluation = {"accuracy": table, "defenders": list(self.hparams.attack_names),
                           "sources": ["clean", *self.source_names], "adaptive": adaptive,
                           "adaptive_attack": self.adaptive_spec}

    # ------------------------------------------------------------------ mode=predict
    def on_predict_start(self) -> None:
        """After the checkpoint is loaded: the logits to correct must have the defender's class count."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and datamodule.num_classes != self.hparams.num_classes:
            raise ConfigError(f"{datamodule.predict_path or datamodule.logit_dir} holds logits of "
                              f"{datamodule.num_classes} classes but the defender has {self.hparams.num_classes} "
                              "(its checkpoint); correct logits of the classifier it was trained for.")

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        assert self.net is not None
        defended = self.net(batch["logits"])
        return {"undefended": batch["logits"].argmax(1), "defended_logits": defended.transpose(0, 1),
                "defended": defended.argmax(-1).transpose(0, 1), "label": batch["label"], "source": batch["source"]}

    # ------------------------------------------------------------------ size report
    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, int(self.hparams.num_classes or 10))

    def size_report(self) -> dict[str, float]:
        if self.net is None:
            raise ConfigError("mode=summary: set model.num_classes and model.attack_names (or data.logit_dir).")
        return super().size_report()


def result_paths(run_dir: str | Path) -> dict[str, Path]:
    """Where the evaluate phase writes its report (see :mod:`lightning_modules.logit_defense_report`)."""
    root = Path(run_dir)
    return {"transfer_json": root / "transfer.json", "transfer_table": root / "transfer.md",
            "transfer_heatmap": root / "transfer_heatmap.png", "predictions": root / "predictions.npz",
            "predictions_csv": root / "predictions.csv"}


__all__ = ["CLEAN_PROBABILITY", "LogitDefenseModule", "result_paths"]
