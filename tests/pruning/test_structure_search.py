"""FLOPs-exact pruning (arXiv:1909.12579, Sec. 3.3): the multiply-add table, the bisection and structure.json."""

from __future__ import annotations

import random

import pytest
import torch

from networks.pruning.cost import MultiplyAddTable, meta_network
from networks.pruning.families import FAMILIES
from networks.pruning.gates import ChannelGate, channel_gates
from networks.pruning.pruner import PruneSettings, prune_network
from networks.pruning.search import DEFAULT_MAX_ITERATIONS, keep_top_channels, search_structure
from networks.pruning.structure import load_structure
from visionsuite.complexity import count_multiply_adds, count_parameters

# (backbone, the official expansion): CIFAR ResNet -e 80 over 16, VGG -e 80 over 64.
OFFICIAL_CIFAR = [("vgg16_bn", 1.25), ("resnet56", 5.0),
                  pytest.param("resnet110", 5.0, marks=pytest.mark.slow)]  # ~15 s of fvcore tracing


def _random_gates(name: str, width_multiplier: float, seed: int = 0) -> torch.nn.Module:
    network = FAMILIES[name].build(10, width_multiplier=width_multiplier, gate_layer=ChannelGate)
    generator = torch.Generator().manual_seed(seed)
    for gate in channel_gates(network, FAMILIES[name].groups_of(network)):
        gate.gates.data = torch.rand(gate.gates.shape, generator=generator)
    return network


@pytest.mark.parametrize(("name", "size", "classes"), [
    ("resnet20", 32, 10), ("vgg16_bn", 32, 10), ("mobilenet_v1", 64, 100), ("resnet50", 64, 100),
    ("mobilenet_v2", 64, 100)])
def test_table_counts_what_the_summary_counter_counts(name: str, size: int, classes: int) -> None:
    family = FAMILIES[name]
    table_network = meta_network(family.build, classes, width_multiplier=0.5)
    table = MultiplyAddTable(table_network, family.groups_of(table_network), size)
    rng = random.Random(1)
    widths = [rng.randint(1, full) for full in family.default_channels(0.5)]
    pruned = family.build(classes, channels=widths, width_multiplier=0.5)
    assert table.multiply_adds(widths) == count_multiply_adds(pruned, torch.zeros(1, 3, size, size))


@pytest.mark.parametrize(("name", "width_multiplier"), OFFICIAL_CIFAR)
def test_reduction_within_one_percent_of_every_target(name: str, width_multiplier: float) -> None:
    """Random gate values on the official expansion, pruned to 0.3 / 0.5 / 0.7; the pruned network is built and
    counted by the counter of ``mode=summary``."""
    family = FAMILIES[name]
    table_network = meta_network(family.build, 10, width_multiplier=width_multiplier)
    table = MultiplyAddTable(table_network, family.groups_of(table_network), 32)
    generator = torch.Generator().manual_seed(0)
    scores = [torch.rand(width, generator=generator) for width in family.default_channels(width_multiplier)]
    reference = count_multiply_adds(family.build(10), torch.zeros(1, 3, 32, 32))
    for target in (0.3, 0.5, 0.7):
        result = search_structure(scores, table, reference, target)
        pruned = family.build(10, channels=[len(kept) for kept in result.kept], width_multiplier=width_multiplier)
        achieved = 1 - count_multiply_adds(pruned, torch.zeros(1, 3, 32, 32)) / reference
        assert abs(achieved - target) <= 0.01 * target, (name, target, achieved)
        assert achieved == pytest.approx(result.achieved, abs=1e-9)


def test_structure_file_records_the_exact_parameter_count(tmp_path) -> None:
    family = FAMILIES["resnet56"]
    network = _random_gates("resnet56", 2.0, seed=3)
    structure = prune_network(network, family, PruneSettings(target=0.4), num_classes=10, width_multiplier=2.0,
                              input_size=32)
    loaded = load_structure(structure.save(tmp_path / "structure.json"))
    built = family.build(10, channels=loaded.channels, width_multiplier=loaded.width_multiplier)
    assert count_parameters(built) == loaded.params
    assert loaded.reference_params == count_parameters(family.build(10))
    assert [len(kept) for kept in loaded.kept] == loaded.channels
    assert "reduction" in loaded.table() and loaded.layers[0] in loaded.table()


def test_global_ranking_keeps_each_layers_top_channels() -> None:
    scores = [torch.tensor([0.9, 0.1, 0.5]), torch.tensor([0.0, 0.0]), torch.tensor([0.7, 0.8])]
    assert keep_top_channels(scores, 4) == [[0, 2], [0], [0, 1]]  # empty layer keeps its best channel
    # Ties keep the earlier channel (reproducible structures from clamped, equal gates).
    assert keep_top_channels([torch.ones(4)], 2) == [[0, 1]]


def test_bisection_never_builds_a_network() -> None:
    """The search sees only the table (a pure function of the widths): no network is rebuilt per step."""
    family = FAMILIES["resnet110"]
    table_network = meta_network(family.build, 10, width_multiplier=5.0)
    table = MultiplyAddTable(table_network, family.groups_of(table_network), 32)
    reference = MultiplyAddTable(meta_network(family.build, 10), family.groups_of(table_network), 32)
    scores = [torch.rand(width, generator=torch.Generator().manual_seed(index))
              for index, width in enumerate(family.default_channels(5.0))]
    calls = []
    original = table.multiply_adds
    table.multiply_adds = lambda widths: calls.append(1) or original(widths)  # type: ignore[method-assign]
    result = search_structure(scores, table, reference.multiply_adds(family.default_channels(1.0)), 0.5)
    assert abs(result.achieved - 0.5) <= 0.01 * 0.5
    assert len(calls) <= DEFAULT_MAX_ITERATIONS + 2  # the two bounds, then one evaluation per halving
