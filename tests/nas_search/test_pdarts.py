"""P-DARTS (arXiv:1904.12760): stage plans, operation dropping, the skip-connect limit and dropout, and the
three-stage chain with its checkpoint, hand-off between stages and resume inside stage 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from networks.nas.genotypes import load_genotype_json
from networks.nas.progressive import derive_with_skip_limit, drop_weakest, skip_dropout_rate
from networks.nas.search_space import EdgeSource, MixedOp, num_cell_edges
from tests.helpers import KeyboardInterruptSimulation
from tests.nas_search.helpers import TINY_CHAIN
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.pipeline import run

STAGE = ["experiment=pdarts_stage_digits", "model.net.init_channels=4", "data.image_size=8"]
KILL_STAGE2 = ("phases.stage2.overrides=['model.progressive.stage=2',"
               "'+callbacks.stop._target_=tests.helpers.StopAfterEpochs','+callbacks.stop.epochs=1']")


@pytest.mark.parametrize("override, message", [
    ("model.progressive.drop_ops=[3,2]", "lengths disagree: layers has 3, drop_ops has 2, skip_dropout has 3"),
    ("model.progressive.skip_dropout=[0.1]", "lengths disagree"),
    ("model.progressive.layers=[3,4,5,6]", "lengths disagree"),
    ("model.progressive.drop_ops=[3,3,2]", "drop 8 operations per edge, but the edges of stage 1 have only 8"),
    ("model.progressive.max_skip_connect=-1", r"model.progressive.max_skip_connect=-1: must be an integer >= 0"),
    ("model.progressive.stage=4", r"model.progressive.stage=4: must be an integer in 1..3"),
    ("model.net.partial_channel_k=3", "model.net.partial_channel_k=3"),
])
def test_bad_stage_settings_are_clear_errors(make_config, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(make_config(*STAGE, override).model, "model")


def test_a_stage_has_its_depth_and_rejects_dropping_more_than_its_candidates(make_config) -> None:
    module = build(make_config(*STAGE, "model.progressive.stage=2").model, "model")
    assert len(module.net.cells) == 4 and module.hparams.layers == 4
    with pytest.raises(ConfigError, match="edges of stage 3 have only 3 candidates"):
        build(make_config(*STAGE, "model.progressive.stage=3",
                          "model.net.candidate_ops=[none,skip_connect,sep_conv_3x3]",
                          "model.progressive.drop_ops=[3,2,3]").model, "model")


def test_drop_weakest_keeps_the_strongest_in_order() -> None:
    weights = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.25, 0.25]])
    assert drop_weakest(weights, [("a", "b", "c", "d")] * 2, 2) == (("b", "d"), ("a", "b"))


def test_skip_limit_replaces_the_weakest_skip_edges_by_their_next_best_op() -> None:
    candidates = [("none", "skip_connect", "sep_conv_3x3")] * num_cell_edges(4)
    weights = torch.full((14, 3), 0.1)
    strengths = {0: 0.9, 1: 0.8, 2: 0.7, 3: 0.6, 5: 0.5, 6: 0.4, 9: 0.35, 10: 0.3}  # the two edges of each node
    for edge, value in strengths.items():
        weights[edge, 1] = value                # every chosen edge is a skip-connect ...
        weights[edge, 2] = value / 2            # ... with sep_conv_3x3 next
    unlimited = derive_with_skip_limit(weights, candidates, 4, None)
    assert sum(op == "skip_connect" for op, _ in unlimited) == 8
    limited = derive_with_skip_limit(weights, candidates, 4, 2)
    assert [op for op, _ in limited].count("skip_connect") == 2
    assert limited[:2] == [("skip_connect", 0), ("skip_connect", 1)]  # the two strongest skips stay
    assert [op for op, _ in limited[2:]] == ["sep_conv_3x3"] * 6
    assert derive_with_skip_limit(weights, candidates, 4, 0).count(("skip_connect", 0)) == 0


def test_skip_dropout_is_decayed_within_the_stage_and_only_in_training() -> None:
    # The official schedule: linear over the warm-up epochs (no architecture updates), then from the
    # initial rate again, times exp(-0.2) per epoch. A stage of 25 epochs, 10 without architecture updates:
    rates = [skip_dropout_rate(0.4, epoch, 25, arch_warmup_epochs=10) for epoch in range(25)]
    assert rates[:10] == pytest.approx([0.4 * (24 - epoch) / 25 for epoch in range(10)])
    assert rates[10:] == pytest.approx([0.4 * math.exp(-0.2 * step) for step in range(15)])
    assert rates[9] == pytest.approx(0.24) and rates[10] == pytest.approx(0.4) and rates[24] < 0.025
    assert skip_dropout_rate(0.0, 3, 25, 10) == 0.0
    edge = MixedOp(4, 1, ["skip_connect"])
    edge.skip_dropout = 0.5
    x = torch.ones(2, 4, 6, 6)
    source = EdgeSource(4, 1)
    assert bool((edge.train()(source(x), torch.ones(1)) == 0).any())
    assert torch.equal(edge.eval()(source(x), torch.ones(1)), x)


def test_a_checkpoint_of_another_stage_is_refused(make_config) -> None:
    stage2 = build(make_config(*STAGE, "model.progressive.stage=2").model, "model")
    checkpoint: dict = {}
    build(make_config(*STAGE).model, "model").on_save_checkpoint(checkpoint)
    assert checkpoint["progressive"]["stage"] == 1 and len(checkpoint["progressive"]["candidate_ops"]["normal"]) == 14
    with pytest.raises(ConfigError, match="holds stage 1 with 8 candidates per edge, this run is stage 2"):
        stage2.on_load_checkpoint(checkpoint)


def test_three_stages_hand_on_their_survivors_and_resume_inside_stage_2(make_config, tmp_path: Path) -> None:
    straight = run(make_config(*TINY_CHAIN, output_dir=tmp_path / "straight"))
    root = tmp_path / "straight"
    sizes = [len(json.loads((root / f"stage{k}" / "candidates.json").read_text())["normal"][0]) for k in (1, 2)]
    assert sizes == [5, 3]
    assert (root / "stage1" / "surviving_ops.png").is_file() and (root / "stage3" / "normal_cell.png").is_file()
    assert not (root / "stage3" / "candidates.json").exists()
    stage2_config = (root / "stage2" / "config.yaml").read_text()
    assert str(root / "stage1" / "candidates.json") in stage2_config
    last = torch.load(root / "stage2" / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["progressive"]["stage"] == 2 and len(last["progressive"]["candidate_ops"]["reduce"][0]) == 5
    assert last["hyper_parameters"]["layers"] == 4
    genotype = load_genotype_json(root / "stage3" / "genotype.json")
    assert sum(op == "skip_connect" for op, _ in genotype.normal) <= 2
    assert straight["artifacts"]["stage3.genotype"] == str(root / "stage3" / "genotype.json")

    with pytest.raises(KeyboardInterruptSimulation):
        run(make_config(*TINY_CHAIN, KILL_STAGE2, output_dir=tmp_path / "killed"))
    killed = tmp_path / "killed"
    assert torch.load(killed / "stage2" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0
    resumed = run(make_config(*TINY_CHAIN, f"resume={killed}", output_dir=killed))
    assert [phase["status"] for phase in resumed["phases"]] == ["finished earlier", "ran", "ran"]
    assert load_genotype_json(killed / "stage3" / "genotype.json") == genotype
    for k in (1, 2):
        assert (killed / f"stage{k}" / "candidates.json").read_text() == (root / f"stage{k}" / "candidates.json").read_text()
