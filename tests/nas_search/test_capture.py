"""``model.compile``: the switch composes, refuses CUDA graphs on CPU, and matches eager."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from networks.nas.compiled_forward import (
    check_device,
    compile_forward,
    normalize_compile,
    recompile_for_skip_dropout,
)
from networks.nas.genotypes import load_genotype_json
from tests.nas_search.helpers import (
    TINY_CHAIN,
    TINY_SEARCH,
    assert_same_final_state,
    tiny_batches,
    tiny_network,
)
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.pipeline import run, run_job


def test_compile_is_off_by_default_and_composes(make_config) -> None:
    assert build(make_config(*TINY_SEARCH).model, "model").compile_setting == "false"
    model = build(make_config(*TINY_SEARCH, "model.compile=default").model, "model")
    assert model.compile_setting == "default"


def test_unknown_compile_value_is_a_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match="model.compile='graphs'.*reduce-overhead"):
        build(make_config(*TINY_SEARCH, "model.compile=graphs").model, "model")


def test_cuda_graphs_are_refused_on_cpu_before_training(make_config) -> None:
    cfg = make_config(*TINY_SEARCH, "model.compile=reduce-overhead", "trainer.max_epochs=1")
    with pytest.raises(ConfigError, match="model.compile=reduce-overhead: CUDA graphs need a CUDA device"):
        run_job(cfg)
    with pytest.raises(ValueError, match="^compile=cudagraphs: CUDA graphs need a CUDA device"):
        check_device("cudagraphs", torch.device("cpu"))


def test_device_check_accepts_what_runs_on_cpu() -> None:
    for setting in ("false", "default", "max-autotune-no-cudagraphs"):
        check_device(normalize_compile(setting), torch.device("cpu"))
    assert normalize_compile(False) == normalize_compile(None) == "false"


def _first_order_iterations(network: torch.nn.Module, steps: int) -> list[torch.Tensor]:
    """``steps`` first-order search iterations (arch step on the val batch, weight step on the train batch)."""
    train_batch, val_batch = tiny_batches()
    weight_optimizer = torch.optim.SGD(network.weight_parameters(), lr=0.05, momentum=0.9)
    arch_optimizer = torch.optim.Adam(network.arch_parameters(), lr=3e-3, betas=(0.5, 0.999))
    for _ in range(steps):
        loss = F.cross_entropy(network(val_batch[0]), val_batch[1])
        for parameter, gradient in zip(network.arch_parameters(),
                                       torch.autograd.grad(loss, network.arch_parameters()), strict=True):
            parameter.grad = gradient
        arch_optimizer.step()
        loss = F.cross_entropy(network(train_batch[0], detach_arch=True), train_batch[1])
        weights = network.weight_parameters()
        for parameter, gradient in zip(weights, torch.autograd.grad(loss, weights), strict=True):
            parameter.grad = gradient
        weight_optimizer.step()
    return [parameter.detach().clone() for parameter in network.arch_parameters()]


@pytest.mark.slow
def test_compiled_forward_gives_the_eager_architecture_parameters() -> None:
    """Same graphs through dynamo + AOTAutograd (backend aot_eager: no C++ compilation on the test machine):
    alpha after 3 iterations equal to eager within 1e-9 in float64 (the order of some sums may differ)."""
    candidates = {"normal": [["none", "skip_connect", "avg_pool_3x3", "sep_conv_3x3"]] * 14,
                  "reduce": [["none", "max_pool_3x3", "skip_connect"]] * 14}
    eager = _first_order_iterations(tiny_network(candidate_ops=candidates).train(), steps=3)
    network = tiny_network(candidate_ops=candidates).train()
    compile_forward(network, "default", backend="aot_eager")
    compiled = _first_order_iterations(network, steps=3)
    torch._dynamo.reset()
    for expected, actual in zip(eager, compiled, strict=True):
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-9)


def test_skip_dropout_change_recompiles_and_eager_is_left_alone() -> None:
    """The P-DARTS dropout rate (a dynamic element) gets a fresh compiled forward; ``false`` stays eager."""
    network = tiny_network()
    recompile_for_skip_dropout(network, "false", 0.3)
    assert "forward" not in vars(network)  # eager: the class's forward
    compile_forward(network, "default", backend="aot_eager")
    first = vars(network)["forward"]
    network.set_skip_dropout(0.3)
    recompile_for_skip_dropout(network, "default", 0.3, backend="aot_eager")
    assert vars(network)["forward"] is not first
    torch._dynamo.reset()


#: What the capture must compose with: the three gradient modes (one epoch each), and PC-DARTS partial
#: channels with edge normalisation and architecture-gradient clipping. Resume: test_search_pipeline.py; DDP:
#: test_search_pipeline.py; both parametrised with model.compile=aot_eager.
COMPOSED = {
    "darts_every_mode": ["trainer.max_epochs=3", "+callbacks.cycle._target_=tests.nas_search.helpers.CycleArchGradients"],
    "pcdarts_clipped": ["trainer.max_epochs=2", "model.net.partial_channel_k=2", "model.net.edge_normalization=true",
                        "model.arch_step.gradient_clip_val=0.5"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPOSED)
def test_captured_search_through_run_matches_eager(make_config, tmp_path: Path, name: str) -> None:
    """The search through the pipeline, eager and with ``model.compile=aot_eager`` (the captured forward and
    backward graphs on eager kernels): every weight, architecture parameter and buffer bitwise equal."""
    common = [*TINY_SEARCH, "trainer.limit_train_batches=2", "test_after_fit=false", *COMPOSED[name]]
    run_job(make_config(*common, output_dir=tmp_path / "eager"))
    run_job(make_config(*common, "model.compile=aot_eager", output_dir=tmp_path / "captured"))
    torch._dynamo.reset()
    assert_same_final_state(tmp_path / "eager", tmp_path / "captured")
    assert load_genotype_json(tmp_path / "eager" / "genotype.json") == \
        load_genotype_json(tmp_path / "captured" / "genotype.json")


@pytest.mark.slow
def test_captured_pdarts_chain_matches_eager(make_config, tmp_path: Path) -> None:
    """The three P-DARTS stages (a new network each, compiled anew; skip-connect dropout recompiled each
    epoch): the same surviving candidates, final state and genotype as eager."""
    run(make_config(*TINY_CHAIN, output_dir=tmp_path / "eager"))
    run(make_config(*TINY_CHAIN, "++model.compile=aot_eager", output_dir=tmp_path / "captured"))  # ++: the stages' key
    torch._dynamo.reset()
    for stage in (1, 2):
        name = f"stage{stage}/candidates.json"
        assert (tmp_path / "eager" / name).read_text() == (tmp_path / "captured" / name).read_text()
    assert_same_final_state(tmp_path / "eager" / "stage3", tmp_path / "captured" / "stage3")
    assert load_genotype_json(tmp_path / "eager" / "stage3" / "genotype.json") == \
        load_genotype_json(tmp_path / "captured" / "stage3" / "genotype.json")
