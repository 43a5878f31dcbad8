"""The LightningModules of the logit defense (Li, Xie et al., "Defending Adversarial Attacks by Correcting
Logits", arXiv:1906.10973): the attack phase and the defender / evaluate phases.

Attack (:class:`LogitAttackModule`, Lightning's predict loop; ``networks.defense.tasks.record_logit_dataset``
runs it with :class:`~callbacks.logit_defense.LogitDatasetRecorder`): the paper trains its defender on the logits
a classifier gives to clean images and to adversarial images (Sec. 3). Each predict step attacks one shard of
images with every configured torchattacks attack (``conf/attack/``) and returns the clean logits and the logits
under each attack. Attacks run in pixel space: the classifier is wrapped with the datamodule's normalisation
(:class:`~networks.defense.normalized.NormalizedClassifier`), so ``eps`` = 16/255 means 16 grey levels, as in the
paper. Each shard's random numbers (PGD's random start) come from a seed derived from ``(seed, split, shard)``.

Defender (:class:`LogitDefenseModule`; Sec. 3 of the paper, values of the authors' code): every sample is the
clean logit vector with probability 0.5, else its adversarial logit vector, and the defender (a two-layer MLP on
logits, :class:`~networks.defense.logit_defender.LogitDefender`) learns to map it to the true label with cross
entropy; Adam, learning rate 1e-4, weight decay 1e-4, batch 256, 50 epochs. One defender is trained per attack of
the logit dataset (a :class:`~networks.defense.logit_defender.DefenderBank`), independently, so the test gives the
full transfer matrix (defender trained on attack A, evaluated on attack B).

Evaluate (``mode=test`` on the defender checkpoint): accuracy of the classifier alone and of classifier + each
defender, on clean logits and under each attack (:class:`~metrics.logit_defense.DefenseAccuracy`), and, when the
classifier and the test images are given, an adaptive white-box attack through classifier + defender
(:class:`~metrics.logit_defense.AdaptiveAccuracy`). ``mode=predict`` corrects the logits of a saved file: no image
is needed.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from callbacks.logit_defense import LogitDefenseReport
from datamodules.logit_attack_data import normalization_of
from metrics.logit_defense import AdaptiveAccuracy, DefenseAccuracy
from networks.defense.attacks import attack_parameters, build_attack, record_logits, seeded, shard_seed
from networks.defense.classifier import DefendedClassifier, same_classifier
from networks.defense.logit_defender import DefenderBank
from networks.defense.normalized import NormalizedClassifier
from visionsuite.errors import ConfigError
from visionsuite.module import OptimizerFactory, SchedulerFactory, SuiteModule, ensure_finite, plain

log = logging.getLogger(__name__)

#: Probability that a training sample is the clean logit (else the adversarial one), as in the paper's code.
CLEAN_PROBABILITY = 0.5


def _attack_entry(spec: Any, key: str) -> dict[str, Any]:
    """The checked attack entry ``{name, <parameter>: <value>...}`` found at config key ``key``."""
    spec = plain(spec)
    try:
        parameters = attack_parameters(spec)
    except ValueError as error:
        raise ConfigError(f"{key}.{error}") from None
    return {"name": spec["name"], **parameters}


class LogitAttackModule(SuiteModule):
    """Attacks a classifier shard by shard; each predict step returns the shard's clean and adversarial logits.

    Args:
        classifier: The classifier to defend, frozen (``model.classifier``: a file read by
            :func:`~networks.defense.classifier.load_classifier`).
        attacks: Attack name -> attack entry (``conf/attack/*.yaml``), several per run; the logit dataset keeps
            this order.
        seed: Root of the per-shard seeds.
    """

    def __init__(self, classifier: DefendedClassifier | None, attacks: Mapping[str, Mapping[str, Any]],
                 seed: int = 0) -> None:
        super().__init__(config_name="conf/model/logit_attack.yaml")
        if classifier is None:
            raise ConfigError("model.classifier.checkpoint is not set: give the classifier to defend (a suite "
                              "classifier checkpoint; in a chain, phases.classifier.use=<file.ckpt>).")
        attacks = plain(attacks)  # plain containers in hparams
        self.save_hyperparameters(logger=False, ignore=["classifier"])
        self.attack_specs = {name: _attack_entry(spec, f"model.attacks.{name}") for name, spec in (attacks or {}).items()}
        if not self.attack_specs:
            raise ConfigError("model.attacks is empty: add at least one attack (e.g. +attack@model.attacks.pgd=pgd).")
        self.net = classifier
        self.seed = int(seed)
        self.attacked: NormalizedClassifier | None = None
        self.attacks: dict[str, Any] = {}

    @property
    def num_classes(self) -> int | None:
        """The classifier's class count (None when its checkpoint does not say)."""
        return self.net.num_classes

    def setup(self, stage: str) -> None:
        mean, std = self.trainer.datamodule.normalization()
        self.attacked = NormalizedClassifier(self.net, mean, std)

    def on_predict_start(self) -> None:
        assert self.attacked is not None
        self.attacked.eval()
        self.attacks = {name: build_attack(spec, self.attacked, device=self.device)
                        for name, spec in self.attack_specs.items()}

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """One shard: ``{"split", "shard", "index", "label", "clean" (n, C), "adv" (n, K, C)}``."""
        assert self.attacked is not None
        split, shard = batch["split"], int(batch["shard"])
        # The predict loop runs in inference mode; the attacks need input gradients.
        with torch.inference_mode(False), torch.enable_grad(), seeded(shard_seed(self.seed, split, shard), self.device):
            clean, adversarial = record_logits(self.attacked, self.attacks, batch["image"].clone(),
                                               batch["label"].clone())
        return {"split": split, "shard": shard, "index": batch["index"], "label": batch["label"], "clean": clean,
                "adv": adversarial}

    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, 3, 32, 32)


class LogitDefenseModule(SuiteModule):
    """Trains one logit defender per attack; tests them on every attack; corrects saved logits.

    Args:
        net: The defenders (``model.net``: one per attack of the logit dataset, on its class count).
        classifier: The classifier defended (evaluate phase: the adaptive attack and the identity check); None
            skips both.
        clean_probability: Probability that a training sample is the clean logit (0.5).
        adaptive_attack: The attack entry of the white-box attack through classifier + defender; None skips it.
        optimizer, scheduler, scheduler_interval: see :class:`~visionsuite.module.SuiteModule`.
    """

    def __init__(self, net: DefenderBank, classifier: DefendedClassifier | None = None,
                 clean_probability: float = CLEAN_PROBABILITY, adaptive_attack: Mapping[str, Any] | None = None,
                 optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None,
                 scheduler_interval: str = "epoch") -> None:
        super().__init__(optimizer, scheduler, scheduler_interval, config_name="conf/model/logit_defender.yaml")  # type: ignore[arg-type]
        if not 0.0 <= float(clean_probability) <= 1.0:
            raise ConfigError(f"model.clean_probability must be in [0, 1], got {clean_probability!r}.")
        adaptive_attack = plain(adaptive_attack)  # plain containers in checkpoints
        self.save_hyperparameters(logger=False, ignore=["net", "classifier", "optimizer", "scheduler"])
        # What a checkpoint's defenders are (read back by data.logit_dataset.defender_layout and on loading).
        self.hparams.update(num_classes=net.num_classes, attack_names=list(net.attack_names), hidden=net.hidden,
                            dropout=net.dropout)
        self.net = net
        self.adaptive_spec = None if adaptive_attack is None else _attack_entry(adaptive_attack,
                                                                                "model.adaptive_attack")
        # The classifier is not a submodule: it is no part of the defender's checkpoint.
        self._classifier: list[DefendedClassifier] = [] if classifier is None else [classifier]
        self._normalization: tuple[list[float], list[float]] | None = None
        self.evaluation: dict[str, Any] = {}

    def configure_callbacks(self) -> list[pl.Callback]:
        """The evaluate phase's tables and heat map, and ``mode=predict``'s corrected logits."""
        return [LogitDefenseReport()]

    # ------------------------------------------------------------------ checkpoints and set-up
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The checkpoint must hold the defenders ``model.net`` builds (its attacks, on its class count)."""
        stored = checkpoint.get("hyper_parameters", {})
        classes, names = stored.get("num_classes"), list(stored.get("attack_names") or [])
        if classes is not None and int(classes) != self.net.num_classes:
            raise ConfigError(f"The defender checkpoint has {classes} classes but model.net has "
                              f"{self.net.num_classes}; use a defender trained on the logits of this classifier.")
        if names and names != self.net.attack_names:
            raise ConfigError(f"The defender checkpoint holds defenders for {names} but model.net.attack_names is "
                              f"{self.net.attack_names}; leave model.net.attack_names unset to take the checkpoint's.")

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if stage == "predict":
            return
        names = self.net.attack_names
        if stage in ("fit", "validate"):
            missing = [name for name in names if name not in datamodule.attack_names]
            if missing:
                raise ConfigError(f"The logit dataset {datamodule.logit_dir} has no attack {missing}; it has "
                                  f"{datamodule.attack_names}. Train on attacks it holds (model.net.attack_names).")
        self.source_names = list(datamodule.attack_names)
        self.val_metric = DefenseAccuracy(names, self.source_names)
        self.test_metric = DefenseAccuracy(names, self.source_names)
        self.adaptive_metric = AdaptiveAccuracy(names)
        if self._classifier:
            _warn_if_other_classifier(datamodule.manifest.get("classifier", {}), self._classifier[0].identity,
                                      str(datamodule.logit_dir))
        if stage == "test" and self._classifier and self.adaptive_spec is not None and datamodule.images is not None:
            self._normalization = normalization_of(datamodule.images)

    # ------------------------------------------------------------------ training (Sec. 3)
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
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
        sources = torch.cat([batch["clean"].unsqueeze(0), batch["adv"].transpose(0, 1)])  # (1 + S, N, C)
        flat = sources.flatten(0, 1)
        defended = self.net(flat).view(len(self.net.attack_names), *sources.shape)
        return torch.cat([sources.unsqueeze(0), defended])

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.val_metric.update(self._all_logits(batch), batch["label"])

    def on_validation_epoch_end(self) -> None:
        table = self.val_metric.as_table()
        self.val_metric.reset()
        names = self.net.attack_names
        clean = sum(table[name]["clean"] for name in names) / len(names)
        adversarial = sum(table[name][name] for name in names) / len(names)
        # What each defender is trained for: half clean, half its own attack.
        self.log_dict({"val/acc": (clean + adversarial) / 2, "val/clean_acc": clean, "val/adv_acc": adversarial,
                       "val/undefended_clean_acc": table["undefended"]["clean"]}, prog_bar=True)

    # ------------------------------------------------------------------ evaluation
    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.test_metric.update(self._all_logits(batch), batch["label"])
        if self._normalization is not None and "image" in batch:
            self.adaptive_metric.update(self._adaptive_predictions(batch["image"], batch["label"]), batch["label"])

    def _adaptive_predictions(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(K, N)`` predictions of classifier + defender ``k`` on images attacked through both."""
        assert self._normalization is not None and self.adaptive_spec is not None
        classifier = self._classifier[0].to(self.device)
        predictions = []
        for name in self.net.attack_names:
            defended = NormalizedClassifier(classifier, *self._normalization, head=self.net[name]).eval()
            attack = build_attack(self.adaptive_spec, defended, device=self.device)
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
            adaptive = dict(zip(self.net.attack_names, self.adaptive_metric.compute().tolist(), strict=True))
            metrics.update({f"test/adaptive/{name}": value for name, value in adaptive.items()})
        self.adaptive_metric.reset()
        self.log_dict(metrics)
        self.evaluation = {"accuracy": table, "defenders": list(self.net.attack_names),
                           "sources": ["clean", *self.source_names], "adaptive": adaptive,
                           "adaptive_attack": self.adaptive_spec}

    # ------------------------------------------------------------------ mode=predict
    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        defended = self.net(batch["logits"])
        return {"undefended": batch["logits"].argmax(1), "defended_logits": defended.transpose(0, 1),
                "defended": defended.argmax(-1).transpose(0, 1), "label": batch["label"], "source": batch["source"]}

    # ------------------------------------------------------------------ size report
    def example_input(self) -> torch.Tensor:
        return torch.zeros(1, self.net.num_classes)


def _warn_if_other_classifier(dataset_identity: Mapping[str, Any], defended: Mapping[str, Any], dataset: str) -> bool:
    """Warn (naming both) when the logit dataset ``dataset`` was made by another classifier than ``defended``.

    Returns:
        True when a warning was given.
    """
    if not dataset_identity or same_classifier(dataset_identity, defended):
        return False
    message = (f"The logit dataset {dataset} was made by the classifier {dataset_identity.get('checkpoint')} "
               f"(sha256 {str(dataset_identity.get('sha256'))[:12]}) but the classifier defended here is "
               f"{defended.get('checkpoint')} (sha256 {str(defended.get('sha256'))[:12]}): the defender learned "
               "another network's logits, so its numbers say little about this one.")
    log.warning(message)
    warnings.warn(message, UserWarning, stacklevel=2)
    return True


__all__ = ["CLEAN_PROBABILITY", "LogitAttackModule", "LogitDefenseModule"]
