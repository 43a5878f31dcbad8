"""The attack phase of the logit defense (arXiv:1906.10973) as a phase task: it trains nothing.

:func:`record_logit_dataset` runs Lightning's predict loop: :class:`~lightning_modules.logit_defense.LogitAttackModule`
attacks the classifier shard by shard over the pending shards of every split
(:class:`~datamodules.logit_attack_data.AttackImagesDataModule`), and
:class:`~callbacks.logit_defense.LogitDatasetRecorder` writes each shard into the logit dataset. A killed phase
run again (``resume=<run dir>``) continues at the first missing shard, and the files equal an uninterrupted run's.
The experiment names it in ``task`` (``conf/experiment/logit_defense/attack.yaml``); it is not imported by
:mod:`networks.defense`.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from callbacks.logit_defense import LogitDatasetRecorder
from datamodules.logit_attack_data import AttackImagesDataModule
from lightning_modules.logit_defense import LogitAttackModule
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build, build_trainer
from visionsuite.tasks import TaskResult


def record_logit_dataset(cfg: DictConfig, output_dir: Path, logit_dir: str) -> TaskResult:
    """Attack every image of the configured splits and record the logit dataset ``logit_dir``.

    Args:
        cfg: The job's config: ``data`` (the images), ``model`` (the classifier and the attacks), ``trainer``,
            ``callbacks`` and ``logger``.
        output_dir: The phase's run directory.
        logit_dir: Where the logit dataset goes (the phase's ``logits`` artifact).

    Returns:
        The classifier's accuracy on the clean and attacked images of the shards written by this run
        (``attack/<split>/<source>_acc``), and the ``logits`` artifact.
    """
    data = build(cfg.data, "data")
    if not isinstance(data, AttackImagesDataModule):
        raise ConfigError(f"The attack phase attacks images in pixel space: `data` must be an AttackImagesDataModule "
                          f"(conf/data/logit_attack_*.yaml), not {type(data).__name__}.")
    data.check_data()  # missing or corrupt images stop the phase before anything is written
    model = build(cfg.model, "model")
    if not isinstance(model, LogitAttackModule):
        raise ConfigError(f"The attack phase runs a LogitAttackModule (model=logit_attack), not {type(model).__name__}.")
    num_classes = model.num_classes or data.num_classes
    if num_classes is None:
        raise ConfigError(f"The class count of the classifier {model.net.identity['checkpoint']} is unknown: set "
                          "model.classifier.num_classes.")
    if data.num_classes is not None and num_classes != data.num_classes:
        raise ConfigError(f"The classifier {model.net.identity['checkpoint']} has {num_classes} classes but the data "
                          f"has {data.num_classes}; attack it on the dataset it was trained on.")
    recorder = LogitDatasetRecorder(logit_dir, int(num_classes))
    trainer = build_trainer(cfg, extra_callbacks=[recorder])
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer.predict(model, datamodule=data, return_predictions=False)
    return TaskResult(metrics=dict(sorted(recorder.metrics.items())), artifacts={"logits": str(logit_dir)})


__all__ = ["record_logit_dataset"]
