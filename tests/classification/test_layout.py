"""Where the classification and Pruning-from-Scratch pieces are and how they are built: the zoo's registry, injected
networks, networks that name their own arguments, metrics without Lightning, the prune step as a task."""

from __future__ import annotations

import inspect
import re

import pytest
import yaml

from lightning_modules.classification import ImageClassifier
from lightning_modules.pruning import GateLearning, PrunedClassifier
from networks.classification import BackboneSpec, backbone_names, build_backbone
from networks.pruning.families import FAMILIES
from tests.helpers import CONFIG_DIR, REPO_ROOT
from visionsuite.module import SuiteModule

#: A key of the model config (what networks/ code never names).
CONFIG_KEY = re.compile(r"model\.(net|backbone|prune|structure|official_expansion|num_classes|init_kept_from)\b")
ZOO = ["mobilenet_v1", "mobilenet_v2", "resnet110", "resnet20", "resnet50", "resnet56", "vgg16_bn", "wrn28_10"]


def test_every_backbone_registers_itself_where_it_is_defined() -> None:
    assert backbone_names() == ZOO
    for path in (REPO_ROOT / "networks" / "classification").glob("*.py"):
        source = path.read_text()
        for name in ZOO:  # a constructor is registered in its own file, named after the backbone
            if f"\ndef {name}(" in source:
                assert f"@register_backbone\ndef {name}(" in source, (path.name, name)
    assert set(FAMILIES) == set(ZOO) - {"wrn28_10"}  # every prunable family is a backbone of the zoo
    network = build_backbone("resnet50", 10, width_multiplier=0.5, weights_path=None)
    assert network.backbone_spec == BackboneSpec("resnet50", {"width_multiplier": 0.5})  # files are no architecture
    assert all(yaml.safe_load((CONFIG_DIR / "model" / "backbone" / f"{name}.yaml").read_text())["name"] == name
               for name in ZOO)


@pytest.mark.parametrize("module", [ImageClassifier, GateLearning, PrunedClassifier])
def test_the_modules_take_built_networks_and_few_arguments(module: type) -> None:
    assert issubclass(module, SuiteModule) and "configure_optimizers" not in vars(module)
    parameters = inspect.signature(module).parameters
    assert next(iter(parameters)) == "net" and len(parameters) <= 12


@pytest.mark.parametrize(("config", "target"), [("classifier", None), ("pfs_gate_learning", None),
                                                ("pfs_classifier", "networks.pruning.structure.pruned_network")])
def test_the_model_configs_inject_the_network_chosen_by_model_backbone(make_config, config: str,
                                                                       target: str | None) -> None:
    text = yaml.safe_load((CONFIG_DIR / "model" / f"{config}.yaml").read_text())
    assert {"backbone": "resnet56"} in text["defaults"] and "backbone" not in text
    assert text["net"]["num_classes"] == "${..num_classes}"
    cfg = make_config(f"model={config}", "model/backbone=vgg16_bn")
    assert cfg.model.net.name == "vgg16_bn"
    assert cfg.model.net._target_ == (target or "networks.classification.build_backbone")
    for path in (CONFIG_DIR / "model" / "backbone").glob("*.yaml"):  # the group is the model's net node
        assert path.read_text().startswith("# @package model.net\n"), path.name


def test_networks_name_their_own_arguments_and_no_config_key() -> None:
    for folder in ("classification", "pruning"):
        for path in (REPO_ROOT / "networks" / folder).glob("*.py"):
            if path.name == "tasks.py":  # the phase task is config-layer code
                continue
            source = path.read_text()
            assert not CONFIG_KEY.search(source), (path.name, CONFIG_KEY.search(source))
            if path.name not in ("structure.py", "official.py"):  # these read files and name the file
                assert "ConfigError" not in source, path.name
    with pytest.raises(ValueError, match=r"^width_multiplier=0: must be > 0"):
        build_backbone("resnet56", 10, width_multiplier=0)
    with pytest.raises(ValueError, match=r"^last_stride=3: use 1 or 2"):
        build_backbone("resnet50", 10, last_stride=3)


def test_the_prune_step_is_a_task_not_a_test_loop(make_config) -> None:
    for experiment in ("pfs_digits_prune", "pfs_cifar10_prune", "pfs_imagenet_prune", "pfs_baseline_digits_prune",
                       "pfs_baseline_cifar10_prune"):
        cfg = make_config(f"experiment={experiment}")
        assert cfg.task._target_ == "networks.pruning.tasks.prune" and cfg.mode == "train", experiment
        assert "prune_on_test" not in (cfg.callbacks or {}), experiment
