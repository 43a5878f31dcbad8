"""Every experiment composes, and the papers' settings are what the configs say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import CONFIG_DIR

EXPERIMENTS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(make_config, experiment: str) -> None:
    cfg = make_config(f"experiment={experiment}")
    assert cfg.task_name
    assert cfg.model._target_ or cfg.phases


def test_default_job_is_the_pdarts_search_then_train_on_embedded_digits(make_config) -> None:
    cfg = make_config()
    assert list(cfg.phases) == ["stage1", "stage2", "stage3", "train"]
    assert [cfg.phases[f"stage{k}"].experiment for k in (1, 2, 3)] == ["pdarts_stage_digits"] * 3
    assert cfg.phases.train.experiment == "nas_train_digits"
    assert cfg.phases.train.inputs["model.net.genotype"] == "stage3.genotype"
    stage = make_config("experiment=pdarts_stage_digits")
    assert stage.data._target_ == "datamodules.digits.DigitsDataModule"


def test_cifar10_evaluation_settings_are_the_papers(make_config) -> None:
    cfg = make_config("experiment=nas_train_cifar10", "model.net.genotype=PC_DARTS_cifar")
    assert cfg.model.net.genotype == "PC_DARTS_cifar"
    assert (cfg.model.net.init_channels, cfg.model.net.layers) == (36, 20)
    assert cfg.model.auxiliary_weight == 0.4
    assert cfg.model.drop_path_prob > 0
    assert cfg.data.cutout_length == 16
    assert cfg.trainer.max_epochs == 600
    assert cfg.data.batch_size == 96
    assert cfg.model.optimizer.lr == 0.025 and cfg.model.optimizer.weight_decay == 3e-4
    assert cfg.model.scheduler._target_.endswith("CosineAnnealingLR")
    assert cfg.model.scheduler.T_max == 600
    assert cfg.trainer.gradient_clip_val == 5.0


def test_cifar100_and_imagenet_settings(make_config) -> None:
    cfg = make_config("experiment=nas_train_cifar100")
    assert cfg.model.num_classes == 100 and cfg.data.name == "cifar100"
    cfg = make_config("experiment=nas_train_imagenet")
    assert (cfg.model.net.init_channels, cfg.model.net.layers) == (48, 14)
    assert cfg.model.net._target_ == "networks.nas.networks.NetworkImageNet"  # model/genotype_net=imagenet
    assert cfg.model.label_smoothing == 0.1
    assert cfg.model.optimizer.weight_decay == 3e-5
    assert cfg.model.scheduler._target_ == "visionsuite.schedulers.linear_decay_with_warmup"


def test_command_line_overrides_reach_the_config(make_config) -> None:
    cfg = make_config("experiment=nas_train_cifar10", "trainer.max_epochs=3", "data.batch_size=8")
    assert cfg.trainer.max_epochs == 3 and cfg.model.scheduler.T_max == 3
    assert cfg.data.batch_size == 8


@pytest.mark.parametrize("group,option", [("trainer", "gpu"), ("trainer", "ddp"), ("trainer", "ddp_cpu"),
                                          ("logger", "wandb"), ("logger", "tensorboard"), ("logger", "csv")])
def test_group_options_exist(make_config, group: str, option: str) -> None:
    cfg = make_config(f"{group}={option}")
    assert cfg[group]


def test_wandb_is_offline_by_default(make_config, tmp_path: Path) -> None:
    cfg = make_config("logger=default")
    assert cfg.logger.wandb.offline is True
    assert "csv" in cfg.logger


def test_ddp_cpu_is_two_gloo_processes(make_config) -> None:
    cfg = make_config("trainer=ddp_cpu")
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == ("cpu", 2, "ddp")


def test_every_yaml_value_line_is_valid_yaml() -> None:
    import yaml

    for path in CONFIG_DIR.rglob("*.yaml"):
        yaml.safe_load(path.read_text())
