"""The MCNL experiments are one family: a base with a dataset axis, the triplet / full variants as small templates."""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import CONFIG_DIR

FAMILY = sorted(path for path in (CONFIG_DIR / "experiment").rglob("*.yaml")
                if path.stem.startswith(("mcnl_", "triplet_")) or path.parent.name == "mcnl")


def test_the_family_sets_the_monitor_once_and_copies_no_checkpoint_settings() -> None:
    configs = {path.relative_to(CONFIG_DIR).as_posix(): yaml.safe_load(path.read_text()) or {} for path in FAMILY}
    assert [name for name, config in configs.items() if "monitor" in config] == ["experiment/mcnl/base.yaml"]
    assert not [name for name, config in configs.items()
                if "optimized_metric" in config or "model_checkpoint" in (config.get("callbacks") or {})]


@pytest.mark.parametrize(("experiment", "data", "loss", "sampler", "split"), [
    ("mcnl_market_sct", "market1501", "MCNLLoss", "camera_aware", "sct"),
    ("mcnl_duke_full", "dukemtmc", "MCNLLoss", "camera_aware", "full"),
    ("triplet_duke_sct", "dukemtmc", "BatchHardTripletLoss", "identity", "sct"),
    ("triplet_market_full", "market1501", "BatchHardTripletLoss", "identity", "full"),
    ("triplet_demo", "reid_demo", "BatchHardTripletLoss", "identity", "sct"),
])
def test_each_experiment_is_the_base_plus_its_data_and_variant(make_config, experiment: str, data: str, loss: str,
                                                               sampler: str, split: str) -> None:
    cfg = make_config(f"experiment={experiment}")
    assert cfg.data.data_dir.endswith(data) and cfg.model.loss._target_.endswith(loss)
    assert (cfg.data.sampler, cfg.data.training_split, cfg.test_ckpt, cfg.monitor) == (sampler, split, "last", "val/mAP")
    assert cfg.callbacks.retrieval_pictures._target_ == "callbacks.reid.RetrievalPictures"


def test_the_demo_trunk_is_its_preset() -> None:
    # The reduced trunk's widths and depths are reduced_resnet_trunk's defaults: the model config names the preset.
    config = yaml.safe_load((CONFIG_DIR / "model" / "reid_reduced_resnet.yaml").read_text())
    assert set(config["net"]["trunk"]) == {"_target_"}
