"""Evaluation networks built from genotypes: shapes, auxiliary head, drop-path, published sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from networks.nas.genotypes import PUBLISHED_GENOTYPES
from networks.nas.networks import (
    AuxiliaryHeadCIFAR,
    AuxiliaryHeadImageNet,
    GenotypeCell,
    NetworkCIFAR,
    NetworkImageNet,
    count_parameters_m,
    drop_path,
)
from networks.nas.operations import Identity


# Published sizes without the auxiliary head (DARTS Table 1/3, PC-DARTS Table 1/2, P-DARTS Table 1/3).
@pytest.mark.parametrize(
    ("network", "name", "published"),
    [
        ("cifar", "DARTS_V2", 3.3),
        ("cifar", "PC_DARTS_cifar", 3.6),
        ("cifar", "PDARTS", 3.4),
        ("imagenet", "DARTS_V2", 4.7),
        ("imagenet", "PC_DARTS_image", 5.3),
        ("imagenet", "PDARTS", 4.9),
    ],
)
def test_published_parameter_counts(network: str, name: str, published: float) -> None:
    if network == "cifar":
        model: nn.Module = NetworkCIFAR(36, 10, 20, auxiliary=True, genotype=name)
    else:
        model = NetworkImageNet(48, 1000, 14, auxiliary=True, genotype=name)
    count = count_parameters_m(model)
    assert round(count, 1) == published, f"{network} {name}: {count:.6f}M"
    assert count_parameters_m(model, exclude_auxiliary=False) > count


@pytest.mark.parametrize("name", sorted(PUBLISHED_GENOTYPES))
def test_cifar_forward_shapes_and_auxiliary(name: str) -> None:
    torch.manual_seed(0)
    model = NetworkCIFAR(4, 10, 5, auxiliary=True, genotype=name)
    model.drop_path_prob = 0.2
    x = torch.randn(2, 3, 32, 32)
    model.train()
    logits, aux_logits = model(x)
    assert logits.shape == (2, 10)
    assert aux_logits is not None and aux_logits.shape == (2, 10)
    (logits.sum() + aux_logits.sum()).backward()
    model.eval()
    with torch.no_grad():
        logits, aux_logits = model(x)
    assert logits.shape == (2, 10) and aux_logits is None


def test_cifar_without_auxiliary_and_grayscale_small_input() -> None:
    model = NetworkCIFAR(4, 3, 4, auxiliary=False, genotype="DARTS_V2", in_channels=1).train()
    assert model.auxiliary_head is None
    logits, aux_logits = model(torch.randn(2, 1, 8, 8))
    assert logits.shape == (2, 3) and aux_logits is None


def test_cifar_structure() -> None:
    model = NetworkCIFAR(4, 10, 20, auxiliary=True, genotype="DARTS_V2")
    reductions = [position for position, cell in enumerate(model.cells) if cell.reduction]
    assert reductions == [6, 13]
    assert isinstance(model.auxiliary_head, AuxiliaryHeadCIFAR)
    assert model.cells[7].preprocess0.__class__.__name__ == "FactorizedReduce"
    assert model.classifier.in_features == 4 * 4 * 4  # 4 nodes x (C doubled twice)


def test_imagenet_forward_224_with_auxiliary() -> None:
    torch.manual_seed(0)
    model = NetworkImageNet(8, 1000, 3, auxiliary=True, genotype="PC_DARTS_image").train()
    assert isinstance(model.auxiliary_head, AuxiliaryHeadImageNet)
    assert not any(
        isinstance(m, nn.BatchNorm2d) and m.num_features == 768 for m in model.auxiliary_head.modules()
    )
    logits, aux_logits = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 1000) and aux_logits is not None and aux_logits.shape == (2, 1000)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224))[1] is None


def test_imagenet_small_input_without_auxiliary() -> None:
    model = NetworkImageNet(8, 7, 4, auxiliary=False, genotype="PDARTS")
    assert model.cells[0].preprocess0.__class__.__name__ == "FactorizedReduce"
    logits, aux_logits = model.train()(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 7) and aux_logits is None


def test_auxiliary_head_on_too_small_features_raises_clear_error() -> None:
    model = NetworkCIFAR(4, 10, 3, auxiliary=True, genotype="DARTS_V2").train()
    with pytest.raises(ValueError, match="^auxiliary=True: .* build the network with auxiliary=False"):
        model(torch.randn(2, 3, 8, 8))


def test_network_accepts_genotype_mapping_and_rejects_unknown_name() -> None:
    NetworkCIFAR(4, 10, 3, auxiliary=False, genotype=PUBLISHED_GENOTYPES["PDARTS"].to_dict())
    with pytest.raises(ValueError, match="^genotype='NOPE' is not a published genotype; known names"):
        NetworkCIFAR(4, 10, 3, auxiliary=False, genotype="NOPE")


def test_drop_path_keeps_expectation_and_mask_values() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        y = drop_path(torch.ones(20000, 2, 3, 3), 0.3)
    values = y.unique()
    assert len(values) == 2 and values[0] == 0.0
    assert values[1].item() == pytest.approx(1 / 0.7)
    assert abs(y.mean().item() - 1.0) < 0.03
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # one decision per sample
    dropped_fraction = (per_sample[:, 0] == 0).float().mean().item()
    assert abs(dropped_fraction - 0.3) < 0.02


def test_drop_path_identity_in_eval_or_zero_rate() -> None:
    x = torch.randn(4, 3, 2, 2)
    assert drop_path(x, 0.5, training=False) is x
    assert drop_path(x, 0.0) is x
    with pytest.raises(ValueError, match="^drop_prob=1.0"):
        drop_path(x, 1.0)


def test_cell_skips_drop_path_on_identity_ops() -> None:
    """With drop_prob close to 1, only identity edges survive (DARTS_V2 normal node 4 has skip(0) + dil(2))."""
    genotype = PUBLISHED_GENOTYPES["DARTS_V2"]
    cell = GenotypeCell(genotype, 6, 6, 6, reduction=False, reduction_prev=False).train()
    assert sum(isinstance(op, Identity) for op in cell.ops) == 2
    torch.manual_seed(0)
    s0, s1 = torch.randn(64, 6, 4, 4), torch.randn(64, 6, 4, 4)
    out = cell(s0, s1, drop_prob=0.999999)
    nodes = out.split(6, dim=1)
    # Nodes 2, 3 have no identity edge: all samples dropped. Node 5 = skip(0) + dil(2): the identity survives.
    assert torch.count_nonzero(nodes[0]) == 0 and torch.count_nonzero(nodes[1]) == 0
    assert torch.count_nonzero(nodes[3]) > 0
    cell.eval()
    assert torch.equal(cell(s0, s1, drop_prob=0.5), cell(s0, s1, drop_prob=0.0))
