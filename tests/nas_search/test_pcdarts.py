"""PC-DARTS (arXiv:1907.05737) as options of the shared search space: partial channels, edge normalisation,
the ImageNet stem and class-balanced ImageNet search subsets, with every architecture-gradient mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from datamodules.imagenet import ImageNetDataModule
from datamodules.writers.imagefolder import write_image_folder
from networks.nas.arch_gradients import build_arch_gradient
from networks.nas.search_space import EdgeSource, MixedOp, SearchCell, SearchNetwork, concat_and_shuffle
from tests.nas_search.helpers import TINY_SEARCH, tiny_batches
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.pipeline import run_job


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """The textbook channel shuffle (ShuffleNet): view as (groups, C / groups), transpose, flatten."""
    batch, channels, height, width = x.shape
    return (x.view(batch, groups, channels // groups, height, width).transpose(1, 2).contiguous()
            .view(batch, channels, height, width))


def pc_network(seed: int = 0, **options) -> SearchNetwork:
    torch.manual_seed(seed)
    options = {"partial_channel_k": 2, "edge_normalization": True, **options}
    return SearchNetwork(4, 3, 3, in_channels=1, **options).double()


def test_partial_channels_send_one_kth_through_the_ops_and_shuffle_the_rest() -> None:
    edge = MixedOp(8, 1, ["none", "skip_connect", "sep_conv_3x3"], partial_channel_k=4)
    assert next(edge.ops[2].parameters()).shape[0] == 2  # the operations are built with C/K = 2 channels
    x = torch.randn(2, 8, 5, 5)
    source = EdgeSource(8, 1, partial_channel_k=4)(x)
    assert torch.equal(edge(source, torch.tensor([0.0, 1.0, 0.0])), x[:, :2])  # the ops see the first C/K
    assert torch.equal(source.bypass, x[:, 2:])  # the rest bypasses them
    reduced = EdgeSource(8, 2, ["max_pool_3x3"], partial_channel_k=4)(x)
    assert torch.equal(reduced.bypass, torch.nn.functional.max_pool2d(x[:, 2:], 2, 2, ceil_mode=True))
    head = MixedOp(8, 2, ["max_pool_3x3", "skip_connect"], partial_channel_k=4)(reduced, torch.tensor([0.5, 0.5]))
    assert head.shape == (2, 2, 3, 3)


def test_a_pcdarts_node_is_the_sum_of_its_shuffled_edge_outputs() -> None:
    # The cell sums the edges' operation outputs and weighted bypasses, then shuffles once per node; the
    # paper's definition shuffles each edge's concatenation and sums those.
    torch.manual_seed(0)
    k, candidates = 4, ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
    cell = SearchCell(2, 2, 8, 8, 8, False, False, [candidates] * 5, partial_channel_k=k).double()
    s0, s1 = torch.randn(2, 8, 6, 6, dtype=torch.float64), torch.randn(2, 8, 6, 6, dtype=torch.float64)
    op_weights = torch.softmax(torch.randn(5, 4, dtype=torch.float64), -1)
    edge_weights = torch.rand(5, dtype=torch.float64)
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    for edges in ([0, 1], [2, 3, 4]):
        outputs = []
        for state, edge in enumerate(edges):
            source = cell.sources[state](states[state])
            head = cell.edges[edge](source, op_weights[edge])
            outputs.append(edge_weights[edge] * channel_shuffle(torch.cat([head, source.bypass], dim=1), k))
        states.append(sum(outputs))
    torch.testing.assert_close(cell(s0, s1, op_weights, edge_weights), torch.cat(states[-2:], dim=1))


@pytest.mark.parametrize("k", [2, 4, 8])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_concat_and_shuffle_equals_shuffling_the_concatenation(k: int, channels_last: bool) -> None:
    layout = torch.channels_last if channels_last else torch.contiguous_format
    head = torch.randn(3, 2, 4, 5).contiguous(memory_format=layout).requires_grad_(True)
    # The bypass is a channel slice of the edge input, contiguous in neither layout.
    tail = torch.randn(3, 2 * k, 4, 5).contiguous(memory_format=layout)[:, 2:].detach().requires_grad_(True)
    fused = concat_and_shuffle(head, tail, k)
    reference = channel_shuffle(torch.cat([head, tail], dim=1), k)
    assert torch.equal(fused, reference)
    assert fused.is_contiguous(memory_format=layout)  # the layout of the search network is kept
    upstream = torch.randn_like(fused)
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(fused, (head, tail), upstream),
                                                 torch.autograd.grad(reference, (head, tail), upstream),
                                                 strict=True))


@pytest.mark.parametrize("k", [3, 8])
def test_k_not_dividing_the_channels_is_a_clear_error(make_config, k: int) -> None:
    cfg = make_config(*TINY_SEARCH, "model.net.init_channels=8", f"model.net.partial_channel_k={k}")
    with pytest.raises(ConfigError, match=f"model.net.partial_channel_k={k}"):
        build(cfg.model, "model")


def test_beta_is_an_architecture_parameter_with_normalised_node_weights() -> None:
    network = pc_network()
    names = [name for name, _ in network.named_arch_parameters()]
    assert names == ["alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce"]
    assert network.beta_normal.shape == (14,) and float(network.beta_normal.abs().max()) < 0.01
    weight_ids = {id(p) for p in network.weight_parameters()}
    assert not weight_ids & {id(p) for p in network.arch_parameters()}
    for value in network.edge_weights().values():
        sums = [float(value[start:start + count].sum()) for start, count in ((0, 2), (2, 3), (5, 4), (9, 5))]
        assert sums == pytest.approx([1.0] * 4)
    # Without edge normalisation the DARTS network is unchanged (same draws, no beta).
    torch.manual_seed(0)
    darts = SearchNetwork(4, 3, 3, in_channels=1)
    assert [name for name, _ in darts.named_arch_parameters()] == ["alpha_normal", "alpha_reduce"]


@pytest.mark.parametrize("mode", ["first_order", "second_order", "amended"])
def test_every_gradient_mode_gives_beta_a_gradient(mode: str) -> None:
    network = pc_network()
    train, val = tiny_batches()
    optimizer = torch.optim.SGD(network.weight_parameters(), lr=0.01, momentum=0.9)
    result = build_arch_gradient(mode)(network, train, val, optimizer)
    assert [tuple(g.shape) for g in result.gradients] == [(14, 8), (14, 8), (14,), (14,)]
    assert all(bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0 for g in result.gradients)


def test_edge_strength_is_op_weight_times_normalised_beta() -> None:
    network = pc_network()
    with torch.no_grad():
        network.alpha_normal.zero_()
        network.alpha_normal[0, 4] = 3.0  # edge c_{k-2} -> node 0: strongest sep_conv_3x3
        network.alpha_normal[1, 5] = 2.0  # edge c_{k-1} -> node 0: weaker sep_conv_5x5
    assert network.genotype().normal[0] == ("sep_conv_3x3", 0)
    with torch.no_grad():
        network.beta_normal[1] = 5.0      # ... but node 0 trusts edge c_{k-1} far more
    assert network.genotype().normal[0] == ("sep_conv_5x5", 1)


def test_imagenet_stem_search_network() -> None:
    network = SearchNetwork(8, 5, 3, partial_channel_k=2, edge_normalization=True, stem="imagenet")
    assert network(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert next(network.cells[0].edges[0].ops[4].parameters()).shape[0] == 4  # C/K channels through the mixed op
    with pytest.raises(ValueError, match="^stem='mobile'"):
        SearchNetwork(8, 5, 3, stem="mobile")


def test_pcdarts_search_runs_and_records_beta(make_config, tmp_path: Path) -> None:
    run_job(make_config(*TINY_SEARCH, "model.net.partial_channel_k=2", "model.net.edge_normalization=true",
                        "model.arch_step.gradient=amended", "trainer.max_epochs=1", "test_after_fit=false"))
    metadata = json.loads((tmp_path / "run" / "genotype.json").read_text())["metadata"]
    assert metadata["partial_channel_k"] == 2 and len(metadata["edge_weights"]["normal"]) == 14
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert float((state["net.beta_normal"]).abs().max()) > 0.002  # beta moved with alpha


def test_pcdarts_experiments_have_the_papers_settings(make_config) -> None:
    cfg = make_config("experiment=pcdarts_cifar10")
    assert (cfg.model.net.partial_channel_k, cfg.model.net.edge_normalization, cfg.data.batch_size) == (4, True, 256)
    assert (cfg.model.weight_optimizer.lr, cfg.model.scheduler.eta_min) == (0.1, 0.0)
    assert (cfg.model.arch_optimizer.lr, cfg.model.arch_optimizer.weight_decay) == (6e-4, 1e-3)
    assert (cfg.trainer.max_epochs, cfg.model.arch_step.warmup_epochs, cfg.model.arch_step.gradient) == (50, 15, "first_order")
    amended = make_config("experiment=amended_pcdarts_cifar10")
    assert (amended.model.arch_step.gradient, amended.model.net.partial_channel_k) == ("amended", 4)
    imagenet = make_config("experiment=pcdarts_imagenet")
    assert (imagenet.model.net.partial_channel_k, imagenet.model.net.stem, imagenet.data.batch_size) == (2, "imagenet", 1024)
    assert list(imagenet.data.search_subset_fractions) == [0.1, 0.025]
    assert (imagenet.model.weight_optimizer.lr, imagenet.model.arch_optimizer.lr) == (0.5, 6e-3)
    assert (imagenet.model.arch_step.warmup_epochs, imagenet.trainer.max_epochs) == (35, 50)
    assert make_config("experiment=pcdarts_digits").model.net.partial_channel_k == 2


def test_imagenet_search_subsets_are_class_balanced_and_disjoint(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, num_classes=3, images_per_class=40, image_size=8)
    module = ImageNetDataModule(root, num_classes=3, image_size=8, resize_size=8, batch_size=4, search_split=True,
                                search_subset_fractions=[0.1, 0.025])
    module.setup()
    targets = module.search_weights_dataset.dataset.targets
    weights, arch = module.search_weights_dataset.indices, module.search_arch_dataset.indices
    assert sorted(targets[i] for i in weights) == [0] * 4 + [1] * 4 + [2] * 4
    assert sorted(targets[i] for i in arch) == [0, 1, 2]
    assert not set(weights) & set(arch)
    with pytest.raises(ConfigError, match="search_subset_fractions"):
        ImageNetDataModule(root, search_subset_fractions=[0.9, 0.2])
