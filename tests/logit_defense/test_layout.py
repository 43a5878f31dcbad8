"""Where the logit defense's pieces are and how they are built: injected networks, networks that name their own
arguments, metrics without Lightning, the classifier to defend built by the config layer."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import yaml

from lightning_modules.logit_defense import LogitAttackModule, LogitDefenseModule
from networks.classification import build_backbone
from networks.defense.attacks import attack_parameters
from networks.defense.classifier import DefendedClassifier, file_sha256, load_classifier
from networks.defense.logit_defender import DefenderBank
from tests.helpers import CONFIG_DIR, REPO_ROOT
from visionsuite.instantiate import build
from visionsuite.module import SuiteModule


@pytest.mark.parametrize("module", [LogitAttackModule, LogitDefenseModule])
def test_the_modules_take_built_networks_and_few_arguments(module: type) -> None:
    assert issubclass(module, SuiteModule) and "configure_optimizers" not in vars(module)
    assert len(inspect.signature(module).parameters) <= 12


def test_the_model_configs_inject_networks_built_under_networks() -> None:
    defender = yaml.safe_load((CONFIG_DIR / "model" / "logit_defender.yaml").read_text())
    assert defender["net"]["_target_"] == "networks.defense.logit_defender.DefenderBank"
    assert not {"num_classes", "attack_names", "hidden", "dropout"} & set(defender)  # the network's, not repeated
    classifier = yaml.safe_load((CONFIG_DIR / "model" / "defended_classifier" / "file.yaml").read_text())
    assert classifier["_target_"] == "networks.defense.classifier.load_classifier"
    for name in ("logit_attack", "logit_defender"):
        text = (CONFIG_DIR / "model" / f"{name}.yaml").read_text()
        assert "defended_classifier@classifier: file" in text, name


def test_networks_name_their_own_arguments_and_no_config_key() -> None:
    for path in (REPO_ROOT / "networks" / "defense").glob("*.py"):
        if path.name != "tasks.py":  # the phase task is config-layer code
            source = path.read_text()
            assert "ConfigError" not in source and "model." not in source, path.name
    with pytest.raises(ValueError, match=r"^eps=-1 is out of range for attack 'fgsm'"):
        attack_parameters({"name": "fgsm", "eps": -1})
    with pytest.raises(ValueError, match=r"^attack_names must list at least one attack"):
        DefenderBank(None, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^num_classes must be an integer >= 2"):
        DefenderBank(["pgd"], None)  # type: ignore[arg-type]


def test_local_weights_of_a_zoo_backbone_are_the_classifier_defended(tmp_path: Path) -> None:
    """docs/logit_defense.md, "Loading the official models": torchvision-layout weights with their backbone."""
    torch.manual_seed(0)
    network = build_backbone("mobilenet_v2", 1000).eval()
    weights = tmp_path / "mobilenet_v2.pth"
    torch.save(network.state_dict(), weights)
    classifier = load_classifier(weights, backbone="mobilenet_v2", num_classes=1000)
    assert isinstance(classifier, DefendedClassifier) and classifier.num_classes == 1000
    assert classifier.identity["sha256"] == file_sha256(weights) and classifier.identity["backbone"] == "mobilenet_v2"
    assert not classifier.train().training and not any(p.requires_grad for p in classifier.parameters())
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(classifier(images), network(images))
    with pytest.raises(ValueError, match=r"^num_classes is needed with backbone='mobilenet_v2'"):
        load_classifier(weights, backbone="mobilenet_v2")
    with pytest.raises(ValueError, match=r"^checkpoint=\S*mobilenet_v2.pth"):
        load_classifier(weights, backbone="resnet50", num_classes=1000)  # weights of another network
    assert load_classifier(None) is None  # the defender phase defends no classifier


def test_the_classifier_node_builds_through_the_config_layer(make_config, classifier_checkpoint: Path) -> None:
    cfg = make_config("experiment=logit_defense_attack_digits", f"model.classifier.checkpoint={classifier_checkpoint}")
    classifier = build(cfg.model.classifier, "model.classifier")
    assert isinstance(classifier, DefendedClassifier) and classifier.num_classes == 10
    assert classifier.identity["module"] == cfg.model.classifier.module.path
