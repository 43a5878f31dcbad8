"""conf/trainer/: the Trainer arguments users commonly set are keys at Lightning's defaults, so ``trainer.<key>=``
works without ``+`` (on a single experiment, on a chain's every phase, under every trainer choice)."""

from __future__ import annotations

import inspect

import pytest
import pytorch_lightning as pl
from omegaconf import OmegaConf

from tests.helpers import CONFIG_DIR
from visionsuite.phases import plan_overrides

COMMONLY_SET = ("max_epochs", "min_epochs", "max_steps", "min_steps", "max_time", "limit_train_batches",
                "limit_val_batches", "limit_test_batches", "limit_predict_batches", "overfit_batches",
                "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps", "accumulate_grad_batches",
                "gradient_clip_val", "gradient_clip_algorithm", "log_every_n_steps", "precision", "num_nodes",
                "devices", "accelerator", "strategy", "fast_dev_run", "profiler", "detect_anomaly", "deterministic",
                "benchmark", "sync_batchnorm", "enable_progress_bar", "enable_model_summary")
# The suite's own choices, different from Lightning's defaults on purpose (each commented in the YAML).
SUITE_DEFAULTS = {"accelerator": "cpu", "devices": 1, "precision": 32, "min_epochs": 1, "max_epochs": 10,
                  "log_every_n_steps": 10, "deterministic": False}


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp", "ddp_cpu"])
def test_common_trainer_arguments_are_keys_at_lightnings_defaults(trainer: str, make_config) -> None:
    config = make_config("experiment=classify_digits", f"trainer={trainer}").trainer
    lightning = inspect.signature(pl.Trainer).parameters
    for key in COMMONLY_SET:
        assert key in config, f"trainer.{key} is missing from conf/trainer/{trainer}.yaml"
        assert key in lightning


def test_the_default_trainer_has_lightnings_defaults_but_the_suites_own_choices() -> None:
    config = OmegaConf.load(CONFIG_DIR / "trainer" / "default.yaml")
    lightning = inspect.signature(pl.Trainer).parameters
    for key in COMMONLY_SET:
        assert config[key] == SUITE_DEFAULTS.get(key, lightning[key].default), key


def test_a_trainer_key_is_set_without_plus(make_config) -> None:
    cfg = make_config("experiment=nas_train_imagenet", "trainer.max_steps=2", "trainer.limit_val_batches=1",
                      "trainer.accumulate_grad_batches=4", "trainer.gradient_clip_algorithm=value")
    assert (cfg.trainer.max_steps, cfg.trainer.limit_val_batches, cfg.trainer.accumulate_grad_batches) == (2, 1, 4)
    assert cfg.trainer.gradient_clip_val == 5.0  # the experiment's own value stays (DARTS's clipping)


def test_a_trainer_key_reaches_every_phase_of_a_chain(make_config) -> None:
    plan = plan_overrides(make_config("experiment=pfs_digits"), ["trainer.max_steps=3", "trainer.val_check_interval=2"])
    assert [(c.trainer.max_steps, c.trainer.val_check_interval) for c in plan.configs.values()] == [(3, 2)] * 3
    assert not plan.skipped
