"""The search through the pipeline run.py uses: outputs, resume, NaN guard, bad input, CLI, DDP, chains."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from networks.nas.genotypes import load_genotype_json, resolve_genotype
from tests.helpers import KeyboardInterruptSimulation, run_cli
from tests.nas_search.helpers import TINY_SEARCH, assert_same_final_state
from visionsuite.errors import ConfigError, TrainingDivergedError
from visionsuite.instantiate import build
from visionsuite.pipeline import run, run_job

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PICTURES = ("arch_weights.png", "normal_cell.png", "reduction_cell.png")


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_search_writes_genotype_pictures_and_artifacts(make_config, tmp_path: Path) -> None:
    result = run_job(make_config(*TINY_SEARCH, "trainer.max_epochs=2", "model.draw_every_n_epochs=1"))
    run_dir = tmp_path / "run"
    genotype = load_genotype_json(run_dir / "genotype.json")
    assert resolve_genotype(str(run_dir / "genotype.json")) == genotype
    metadata = json.loads((run_dir / "genotype.json").read_text())["metadata"]
    assert metadata["experiment"] == "darts_digits" and metadata["epochs_trained"] == 2
    assert metadata["arch_gradient"] == "first_order"
    assert len(metadata["arch_weights"]["normal"]) == 14 and len(metadata["arch_weights"]["normal"][0]) == 8
    for epoch in (0, 1):
        folder = run_dir / "architecture" / f"epoch_{epoch:03d}"
        assert (folder / "genotype.txt").read_text().startswith("normal cell:")
        assert all((folder / name).is_file() for name in PICTURES)
    assert all((run_dir / name).is_file() for name in PICTURES)

    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["artifacts"]["genotype"] == str(run_dir / "genotype.json") == result["artifacts"]["genotype"]
    assert Path(saved["artifacts"]["normal_cell"]).is_file()
    for name in ("val/acc1", "train/loss_epoch", "train/arch_loss", "test/acc1"):
        assert name in saved["metrics"]
    last = checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert {"net.alpha_normal", "net.alpha_reduce"} <= set(last["state_dict"])
    assert float(last["state_dict"]["net.alpha_normal"].abs().max()) > 0.01  # alpha moved from its 1e-3 init
    assert len(last["optimizer_states"]) == 2  # weights (SGD) and architecture (Adam)
    # The epoch scheduler steps after the last batch of an epoch, so the epoch-end checkpoint has it stepped.
    assert last["lr_schedulers"][0]["last_epoch"] == 2


@pytest.mark.parametrize("overrides", [["model.arch_step.gradient=second_order"],
                                       pytest.param(["model.compile=aot_eager"], marks=pytest.mark.slow)])
def test_killed_and_resumed_search_ends_with_the_same_architecture(make_config, tmp_path: Path,
                                                                   overrides: list[str]) -> None:
    """Also with the forward captured: the resumed run traces its graphs anew."""
    common = [*TINY_SEARCH, "trainer.max_epochs=3", *overrides, "test_after_fit=false", "trainer.limit_train_batches=2"]
    run_job(make_config(*common, output_dir=tmp_path / "straight"))
    with pytest.raises(KeyboardInterruptSimulation):
        run_job(make_config(*common, "+callbacks.stop._target_=tests.helpers.StopAfterEpochs",
                            "+callbacks.stop.epochs=2", output_dir=tmp_path / "resumed"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    assert checkpoint(last)["epoch"] == 1  # killed at the start of the third epoch
    run_job(make_config(*common, f"ckpt_path={last}", output_dir=tmp_path / "resumed"))

    assert_same_final_state(tmp_path / "straight", tmp_path / "resumed")
    assert load_genotype_json(tmp_path / "straight" / "genotype.json") == \
        load_genotype_json(tmp_path / "resumed" / "genotype.json")


def test_nan_architecture_gradient_stops_with_a_clear_message(make_config, tmp_path: Path) -> None:
    cfg = make_config(*TINY_SEARCH, "trainer.max_epochs=3", "+callbacks.poison._target_=tests.helpers.PoisonWeightsAtEpoch",
                      "+callbacks.poison.epoch=1")
    with pytest.raises(TrainingDivergedError, match="architecture gradient .* became NaN") as error:
        run_job(cfg)
    assert "checkpoints/last.ckpt" in str(error.value) and "epoch 1" in str(error.value)
    last = checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 0
    assert all(torch.isfinite(value).all() for value in last["state_dict"].values() if value.is_floating_point())
    assert not (tmp_path / "run" / "genotype.json").exists()


@pytest.mark.parametrize("clip", [None, 1e-6])
def test_architecture_gradients_are_clipped_when_asked(make_config, tmp_path: Path, clip: float | None) -> None:
    # P-DARTS's code clips the architecture gradients (norm 5). Without weight decay Adam's first moment is
    # an average of the gradients it was given, so its norm is bounded by the clip value.
    cfg = make_config(*TINY_SEARCH, "trainer.max_epochs=1", "model.arch_optimizer.weight_decay=0",
                      f"model.arch_step.gradient_clip_val={'null' if clip is None else clip}")
    run_job(cfg)
    state = checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["optimizer_states"][1]["state"]
    first_moment = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s["exp_avg"]) for s in state.values()]))
    if clip is None:
        assert float(first_moment) > 1e-5
    else:
        assert float(first_moment) <= clip * (1 + 1e-5)


@pytest.mark.parametrize("override, message", [
    ("model.arch_step.gradient=third_order", "model.arch_step.gradient='third_order' is not an architecture-gradient "
                                             "mode; use one of first_order, second_order, amended"),
    ("model.net.candidate_ops=[sep_conv_3x3,conv_9x9]", "model.net.candidate_ops: operation 'conv_9x9' is not in the "
                                                        "search space"),
    ("model.net.layers=2", "model.net.layers=2: a search network needs at least 3 cells"),
    ("model.arch_step.eta=-1", "model.arch_step.eta=-1: the Amended-DARTS scale must be a number >= 0"),
    ("model.arch_step.gradient_clip_val=-1", "model.arch_step.gradient_clip_val=-1: must be a number >= 0"),
    ("model.gradient_clip_val=-1", "model.gradient_clip_val=-1: must be a number >= 0"),
    ("model.draw_every_n_epochs=-1", "model.draw_every_n_epochs=-1: must be an integer >= 0"),
])
def test_bad_model_settings_are_clear_errors(make_config, override: str, message: str) -> None:
    # The network and the module check their own arguments; the error names the key the user typed.
    cfg = make_config(*TINY_SEARCH, override)
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[")):
        build(cfg.model, "model")


def test_candidates_that_leave_a_node_without_two_operations_name_the_key(make_config) -> None:
    module = build(make_config(*TINY_SEARCH, "model.net.candidate_ops=[none]").model, "model")
    with pytest.raises(ConfigError, match="^model.net.candidate_ops: normal cell: node 0 has fewer than two"):
        module.genotype()


@pytest.mark.parametrize("fraction", ["0.0", "1.0", "1.5", "-0.5"])
def test_search_split_fraction_outside_zero_one_is_a_clear_error(make_config, fraction: str) -> None:
    cfg = make_config(*TINY_SEARCH, f"data.search_split_fraction={fraction}")
    with pytest.raises(ConfigError, match=r"search_split_fraction must be in \(0, 1\)"):
        build(cfg.data, "data")


def test_search_without_the_search_split_is_a_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match="data.search_split=true"):
        run_job(make_config(*TINY_SEARCH, "data.search_split=false", "trainer.max_epochs=1"))


def test_cli_search_writes_genotype_and_pictures(tmp_path: Path) -> None:
    completed = run_cli(*TINY_SEARCH, "model.draw_every_n_epochs=1", "trainer.max_epochs=2", "logger=csv",
                        "model.arch_step.gradient=amended", cwd=tmp_path, env=ONE_THREAD)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [run_dir] = (tmp_path / "logs" / "darts_digits" / "runs").iterdir()
    genotype = load_genotype_json(run_dir / "genotype.json")
    assert json.loads((run_dir / "genotype.json").read_text())["metadata"]["eta"] == 0.1
    assert all((run_dir / name).is_file() for name in PICTURES)
    assert all((run_dir / "architecture" / "epoch_001" / name).is_file() for name in PICTURES)
    assert "genotype" in completed.stderr  # the summary panel names the artifacts
    assert genotype.normal_concat == (2, 3, 4, 5)


def test_search_then_train_chain(make_config, tmp_path: Path) -> None:
    result = run(make_config("experiment=darts_digits_search_and_train", "model.net.init_channels=4", "model.net.layers=3",
                             "data.batch_size=16", "trainer.max_epochs=1",
                             "phases.search.overrides=['model.draw_every_n_epochs=0']",
                             "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                             "trainer.limit_test_batches=1"))
    run_dir = tmp_path / "run"
    searched = load_genotype_json(run_dir / "search" / "genotype.json")
    train_config = (run_dir / "train" / "config.yaml").read_text()
    assert str(run_dir / "search" / "genotype.json") in train_config
    trained = checkpoint(run_dir / "train" / "checkpoints" / "last.ckpt")
    assert trained["hyper_parameters"]["genotype"]["normal"] == [list(edge) for edge in searched.normal]
    assert [phase["status"] for phase in result["phases"]] == ["ran", "ran"]
    assert result["artifacts"]["search.genotype"] == str(run_dir / "search" / "genotype.json")
    assert math.isfinite(result["metrics"]["test/acc1"])


@pytest.mark.parametrize("compile", ["false", pytest.param("aot_eager", marks=pytest.mark.slow)])
def test_ddp_keeps_parameters_identical_on_every_rank_in_every_mode(tmp_path: Path, compile: str) -> None:
    """Two gloo processes, one epoch per gradient mode; every rank logs checksums after every step. With
    ``model.compile`` the captured forward must leave the averaging of the architecture gradients intact."""
    completed = run_cli(*TINY_SEARCH, "trainer=ddp_cpu", "trainer.max_epochs=3", "logger=csv", "test_after_fit=false",
                        f"model.compile={compile}",
                        "+callbacks.cycle._target_=tests.nas_search.helpers.CycleArchGradients",
                        "+callbacks.checksums._target_=tests.nas_search.helpers.ParameterChecksums",
                        cwd=tmp_path, env=ONE_THREAD, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [run_dir] = (tmp_path / "logs" / "darts_digits" / "runs").iterdir()
    ranks = [json.loads((run_dir / f"checksums_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["world_size"] == 2
    zero, one = ranks[0]["records"], ranks[1]["records"]
    assert len(zero) == len(one) > 0
    assert {record[2] for record in zero} == {"first_order", "second_order", "amended"}
    alphas = {record[3] for record in zero}
    assert len(alphas) == len(zero), "alpha must change at every step"
    for mine, theirs in zip(zero, one, strict=True):
        assert mine == theirs  # epoch, batch, mode, alpha and weight checksums: bitwise equal
    assert (run_dir / "genotype.json").is_file()


def test_summary_mode_reports_the_darts_search_network_size(make_config, capsys) -> None:
    result = run_job(make_config("experiment=darts_cifar10", "mode=summary"))
    assert result["metrics"]["params_m"] == pytest.approx(1.93, abs=0.01)
    assert result["metrics"]["arch_params"] == 2 * 14 * 8
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["params_m"] == result["metrics"]["params_m"]


def test_darts_cifar10_has_the_papers_search_settings(make_config) -> None:
    cfg = make_config("experiment=darts_cifar10")
    model, data = cfg.model, cfg.data
    assert (model.net.init_channels, model.net.layers, model.arch_step.gradient, cfg.trainer.max_epochs) == (16, 8, "first_order", 50)
    assert (data.batch_size, data.search_split, data.search_split_fraction) == (64, True, 0.5)
    assert (model.weight_optimizer.lr, model.weight_optimizer.momentum, model.weight_optimizer.weight_decay) == \
        (0.025, 0.9, 3.0e-4)
    assert (model.scheduler.T_max, model.scheduler.eta_min, model.gradient_clip_val) == (50, 0.001, 5.0)
    assert (model.arch_optimizer.lr, list(model.arch_optimizer.betas), model.arch_optimizer.weight_decay) == \
        (3.0e-4, [0.5, 0.999], 1.0e-3)
    assert cfg.callbacks.model_checkpoint.monitor == "val/acc1" and str(cfg.trainer.precision) == "32"
    amended = make_config("experiment=amended_darts_cifar10", "trainer=gpu")
    assert (amended.model.arch_step.gradient, amended.model.arch_step.eta, str(amended.trainer.precision)) == ("amended", 0.1, "32")
    chain = make_config("experiment=darts_cifar10_search_and_train").phases
    assert chain.search.experiment == "darts_cifar10" and chain.train.experiment == "nas_train_cifar10"
    assert chain.train.inputs["model.net.genotype"] == "search.genotype"
