"""The SAKE experiments are one family: a base with a dataset axis and the demo's chain template; the module gets
its networks, loss and metric built by the config."""

from __future__ import annotations

import pytest
import yaml
from hydra.utils import instantiate

from tests.helpers import CONFIG_DIR
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build

FAMILY = sorted(path for path in (CONFIG_DIR / "experiment").rglob("*.yaml")
                if path.stem.startswith("sake_") or path.parent.name == "sake")


def test_the_family_copies_no_checkpoint_settings_and_the_students_share_one_monitor() -> None:
    configs = {path.relative_to(CONFIG_DIR).as_posix(): yaml.safe_load(path.read_text()) or {} for path in FAMILY}
    assert not [name for name, config in configs.items()
                if "optimized_metric" in config or "model_checkpoint" in (config.get("callbacks") or {})]
    # the students' base, the chain (it ends with the students) and the demo teacher (a classifier)
    assert [name for name, config in configs.items() if "monitor" in config] == [
        "experiment/sake/base.yaml", "experiment/sake/chain.yaml", "experiment/sake_demo_teacher.yaml"]


@pytest.mark.parametrize("name", ["sake_tiny", "sake_teacher_tiny"])
def test_the_demo_networks_are_the_reduced_preset(name: str) -> None:
    # blocks, width_per_group and reduction are cse_resnet's defaults: the model config names the preset only.
    config = yaml.safe_load((CONFIG_DIR / "model" / f"{name}.yaml").read_text())
    assert set(config["net"]) == {"_target_", "num_classes"}


def test_the_chain_runs_the_teacher_then_the_student_with_and_without_sake(make_config) -> None:
    cfg = make_config("experiment=sake_demo")
    assert [(name, phase.experiment) for name, phase in cfg.phases.items()] == [
        ("teacher", "sake_demo_teacher"), ("sake", "sake_demo_student"), ("without_sake", "sake_demo_student")]
    assert list(cfg.phases.without_sake.overrides) == ["model.loss.sake_lambda=0"]
    assert cfg.monitor == "val/mAP_all"


def test_the_heads_and_the_metric_follow_the_model_settings(make_config) -> None:
    cfg = make_config("experiment=sake_sketchy_split2", "model.heads.embedding_dim=32", "model.metric.itq_bits=16",
                      "model.semantic_mask_path=null", "model.net._target_=networks.sbir.cse_resnet")
    model = instantiate(cfg.model)
    assert model.heads.embedding.out_features == 32 and model.heads.classifier.out_features == 104
    assert model.heads.distillation.out_features == model.teacher.num_classes == 1000
    assert (model.test_metric.precision_ks, model.test_metric.map_tops, model.test_metric.itq_bits) == ([100, 200],
                                                                                                      [200], 16)
    assert model.val_metric.itq_bits is None and model.val_metric.precision_ks == [100, 200]
    assert sum(1 for _ in model.parameters()) == sum(1 for _ in model.optimizer_parameters()) + sum(
        1 for _ in model.teacher.parameters())


@pytest.mark.parametrize(("override", "message"), [
    ("model.loss.sake_lambda=-1", r"^model\.loss\.sake_lambda must be >= 0"),
    ("model.net.blocks=[1,1]", r"^model\.net\.blocks must be four stage depths"),
])
def test_a_bad_network_or_loss_argument_is_named_by_its_key(make_config, override: str, message: str) -> None:
    cfg = make_config("experiment=sake_demo_student", f"+{override}" if "blocks" in override else override)
    with pytest.raises(ConfigError, match=message):
        build(cfg.model, "model")


def test_heads_that_do_not_fit_the_network_are_named(make_config) -> None:
    cfg = make_config("experiment=sake_demo_student", "model.heads.teacher_classes=7")
    with pytest.raises(ConfigError, match=r"^model\.heads: teacher_classes=7"):
        build(cfg.model, "model")
