"""Bad input to Pruning from Scratch gets one clear error naming the argument, the file or the layer."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from lightning_modules.pruning import PrunedClassifier
from networks.pruning.cost import MultiplyAddTable, meta_network
from networks.pruning.families import FAMILIES
from networks.pruning.pruner import PruneSettings
from networks.pruning.search import search_structure
from networks.pruning.structure import Structure, load_structure, pruned_network
from visionsuite.errors import ConfigError


def _structure(tmp_path: Path, name: str = "resnet20", **changes) -> Path:
    family = FAMILIES[name]
    groups = family.groups_of(meta_network(family.build, 10, width_multiplier=0.5))
    full = family.default_channels(0.5)
    structure = Structure(backbone=name, num_classes=10, input_size=32, width_multiplier=0.5,
                          reference_width_multiplier=0.5, layers=[g.gate for g in groups], full_channels=full,
                          channels=[max(1, c // 2) for c in full], kept=[list(range(max(1, c // 2))) for c in full],
                          criterion="gates", target=0.5, achieved=0.5, params=0, madds=0, reference_params=0,
                          reference_madds=0)
    path = tmp_path / "structure.json"
    replace(structure, **changes).save(path)
    return path


def _classifier(structure: Path | None, name: str = "resnet20") -> PrunedClassifier:
    net = pruned_network(name, 10, width_multiplier=0.5, structure=None if structure is None else str(structure))
    return PrunedClassifier(net, num_classes=10)


@pytest.mark.parametrize("target", [0.0, 1.0, 1.2, -0.1])
def test_target_outside_zero_one(target: float) -> None:
    with pytest.raises(ValueError, match=r"^target=.*must be in \(0, 1\)"):
        PruneSettings.from_mapping({"target": target})
    with pytest.raises(ValueError, match=r"^targt: not a prune setting"):
        PruneSettings.from_mapping({"targt": 0.5})


def test_unreachable_target_names_the_closest_achievable_reduction() -> None:
    family = FAMILIES["resnet20"]
    network = meta_network(family.build, 10, width_multiplier=5.0)
    table = MultiplyAddTable(network, family.groups_of(network), 32)
    reference = MultiplyAddTable(meta_network(family.build, 10), family.groups_of(network), 32)
    scores = [torch.rand(width) for width in family.default_channels(5.0)]
    with pytest.raises(ValueError, match=r"^target=0\.9: .*closest achievable reduction is 0\.60"):
        search_structure(scores, table, reference.multiply_adds(family.default_channels(1.0)), 0.9)


def test_structure_of_another_backbone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^structure=.*structure.json: the structure is for backbone resnet20, but the "
                                         "network to build is resnet56"):
        _classifier(_structure(tmp_path), name="resnet56")


def test_structure_with_a_mismatching_layer_names_it(tmp_path: Path) -> None:
    family = FAMILIES["resnet20"]
    layers = [g.gate for g in family.groups_of(meta_network(family.build, 10, width_multiplier=0.5))]
    layers[4] = "layer2.1.gate9"
    with pytest.raises(ValueError, match="first mismatching layer: layer2.1.gate9"):
        _classifier(_structure(tmp_path, layers=layers))
    with pytest.raises(ValueError, match="layers, channels and full_channels differ"):
        _classifier(_structure(tmp_path, layers=layers[:-1]))


def test_structure_removing_every_channel_of_a_layer(tmp_path: Path) -> None:
    family = FAMILIES["resnet20"]
    channels = [4] * len(family.default_channels(0.5))
    channels[2] = 0
    with pytest.raises(ValueError, match="layer layer1.2.gate1 keeps 0 channels"):
        _classifier(_structure(tmp_path, channels=channels))


def test_missing_or_foreign_structure_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^.*missing.json: no such file"):
        load_structure(tmp_path / "missing.json")
    (tmp_path / "other.json").write_text(json.dumps({"genotype": "DARTS"}))
    with pytest.raises(ConfigError, match="not a structure.json"):
        load_structure(tmp_path / "other.json")


def test_structure_builds_its_network(tmp_path: Path) -> None:
    module = _classifier(_structure(tmp_path))
    assert [group.gate for group in module.groups][0] == "layer1.0.gate1"
    assert module.net.layer1[0].conv1.out_channels == 4
