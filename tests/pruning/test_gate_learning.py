"""Gate learning (arXiv:1909.12579, Sec. 3.2): only the gates move, the loss is Eq. 3, gates stay in [0, 1]."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.pruning import GateLearning
from networks.classification import build_backbone
from networks.pruning.gates import ChannelGate
from visionsuite.errors import ConfigError, TrainingDivergedError


def _module(**overrides) -> GateLearning:
    settings = {"net": build_backbone("resnet20", 4, width_multiplier=0.25, gate_layer=ChannelGate), "num_classes": 4,
                "optimizer": lambda params: torch.optim.Adam(params, lr=0.05)}
    settings.update(overrides)
    return GateLearning(**settings)


def _loader(seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(24, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 4, (24,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=8)


def _fit(module: GateLearning, steps: int = 3) -> None:
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    trainer.fit(module, train_dataloaders=_loader())


def test_weights_stay_bit_identical_and_only_gates_change() -> None:
    module = _module()
    before = {name: value.clone() for name, value in module.net.named_parameters()}
    _fit(module)
    changed = {name for name, value in module.net.named_parameters() if not torch.equal(value, before[name])}
    assert changed and all(name.endswith(".gates") for name in changed)
    assert {id(p) for p in module.optimizer_parameters()} == {id(g.gates) for g in module.gate_modules}
    gates = module.all_gates().detach()
    assert float(gates.min()) >= 0.0 and float(gates.max()) <= 1.0 and float(gates.max()) < 1.0 + 1e-9


def test_loss_is_cross_entropy_plus_the_sparsity_term() -> None:
    module = _module(sparsity_level=0.2, sparsity_lambda=0.5)
    for index, gate in enumerate(module.gate_modules):
        gate.gates.data.fill_(0.1 * (index % 5))
    expected = 0.5 * (module.all_gates().abs().mean() - 0.2) ** 2
    assert torch.allclose(module.sparsity_loss(), expected)
    images, labels = next(iter(_loader()))
    module.train()
    logits = module(images)
    assert torch.allclose(F.cross_entropy(logits, labels) + module.sparsity_loss(),
                          F.cross_entropy(module.net(images), labels) + expected)


def test_gates_sit_where_the_reference_places_them() -> None:
    module = _module()
    assert len(module.gate_modules) == 9  # one per basic block of ResNet-20: after bn1
    assert all(isinstance(module.net.get_submodule(f"layer1.{i}.gate1"), ChannelGate) for i in range(3))


def test_collapsed_gates_stop_with_advice() -> None:
    module = _module(sparsity_lambda=1000.0, sparsity_level=0.0001,
                     optimizer=lambda params: torch.optim.SGD(params, lr=1000.0))
    with pytest.raises(TrainingDivergedError, match=r"sparsity_lambda.*sparsity_level"):
        _fit(module, steps=2)


@pytest.mark.parametrize("target", [0.0, 1.0, -0.2, 1.5])
def test_target_outside_zero_one_is_refused_when_the_model_is_built(target: float) -> None:
    with pytest.raises(ConfigError, match=r"model.prune.target=.*\(0, 1\)"):
        _module(prune={"target": target})


def test_a_network_that_is_not_prunable_or_has_no_gates_is_refused() -> None:
    with pytest.raises(ConfigError, match="^model.net.name='wrn28_10' is not a prunable backbone; prunable backbones: "):
        _module(net=build_backbone("wrn28_10", 4))
    with pytest.raises(ConfigError, match="^model.net.gate_layer: layer1.0.gate1 is a Identity, not a ChannelGate"):
        _module(net=build_backbone("resnet20", 4, width_multiplier=0.25))
    with pytest.raises(TypeError, match="weights_path"):  # a CIFAR ResNet reads no ImageNet weights
        build_backbone("resnet20", 4, weights_path="x.pth")
