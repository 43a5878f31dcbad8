"""The authors' released DARTS / PC-DARTS / P-DARTS evaluation networks: converted, they compute the official function.

Each golden file (``tests/fixtures/golden/<name>.pt``) holds what the official ``model.py`` computed with the golden
weights. The tests rebuild those weights, write them as the authors' files are written, convert them with the
converter ``run.py`` uses (``GenotypeClassifier.official_format()``) and compare the outputs; then they run the user
commands (``ckpt_path=<official file>``, ``python -m visionsuite.convert``) on tiny datasets in the real formats.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from datamodules.writers import write_image_folder
from datamodules.writers.cifar import CIFAR10_FOLDER, dump_python2_pickle, write_cifar10
from tests.golden import golden_state_dict, load_golden, max_abs_difference, write_official_file
from tests.helpers import run_cli
from visionsuite.convert import convert
from visionsuite.convert import main as convert_main
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.official_weights import OfficialWeightsError, load_converted, read_official_weights
from visionsuite.pipeline import run_job


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """Full-size networks on a few images: one intra-op thread is several times faster on the shared cores."""


TOLERANCE = 1e-5  # tests/fixtures/golden README: float32 on CPU, abs
# Train mode normalises with the statistics of a batch of 2, down to the 1x1 maps of the auxiliary head's
# BatchNorm2d(768), which magnifies float32 rounding: the official outputs themselves differ from a float64
# computation by up to 1.8e-3 (auxiliary logits), and the suite's by up to 9e-4 when the convolutions sum in another
# order (one thread). With the kernels the golden files were computed with (two threads, oneDNN) the suite's train
# outputs are within 7e-7, like the eval outputs (within 7e-7 with any thread count).
GOLDEN_THREADS = 2

# golden file -> (experiment, overrides the user gives, how the authors' file is written)
GOLDEN = {
    "darts_cifar10": ("nas_train_cifar10", ["model.net.genotype=DARTS_V2"], "plain"),  # cifar10_model.pt
    "pcdarts_cifar10": ("nas_train_cifar10", ["model.net.genotype=PC_DARTS_cifar"], "module"),
    "pdarts_cifar10": ("nas_train_cifar10", ["model.net.genotype=PDARTS"], "plain"),
    "darts_imagenet": ("nas_train_imagenet", ["model.net.genotype=DARTS_V2", "model.net.auxiliary_batchnorm=false"],
                       "state_dict"),  # imagenet_model.pt: {'state_dict': ...}
    # train_imagenet.py of PC-DARTS / P-DARTS: {'epoch', 'state_dict' (DataParallel), 'best_acc_top1', 'optimizer'}
    "pcdarts_imagenet": ("nas_train_imagenet", ["model.net.genotype=PC_DARTS_image", "model.net.auxiliary_batchnorm=false"],
                         "training"),
    "pdarts_imagenet": ("nas_train_imagenet", [], "training"),  # the experiment's defaults: PDARTS, aux-head BN
}


@contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _official_file(name: str, path: Path, drop: str | None = None) -> Path:
    """The golden weights of ``name`` written as its authors' file is written (``GOLDEN``), without keys under
    ``drop``."""
    state = golden_state_dict(load_golden(name)["keys"])
    if drop is not None:
        state = {key: value for key, value in state.items() if not key.startswith(drop)}
    return write_official_file(path, state, GOLDEN[name][2])


def _model(make_config, experiment: str, *overrides: str):
    return build(make_config(f"experiment={experiment}", *overrides).model, "model")


def _load_official(model, path: Path) -> None:
    """What ``run.py ... ckpt_path=<official file>`` does with the file (visionsuite.pipeline._load_official)."""
    official_format = model.official_format()
    load_converted(official_format.network, read_official_weights(path), official_format.convert_key, source=path,
                   description=official_format.description)


def _inputs(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = load_golden(name)["inputs"]
    if isinstance(inputs, dict):  # ImageNet: batch 1 in eval mode, batch 2 in train mode
        return inputs["x"].clone(), inputs["x_train"].clone()
    return inputs.clone(), inputs.clone()


@pytest.mark.parametrize("name", list(GOLDEN))
def test_official_checkpoint_computes_the_official_function(make_config, tmp_path: Path, name: str) -> None:
    experiment, overrides, _ = GOLDEN[name]
    path = _official_file(name, tmp_path / f"{name}.pt")
    expected = load_golden(name)["outputs"]
    eval_input, train_input = _inputs(name)

    model = _model(make_config, experiment, *overrides)
    _load_official(model, path)
    model.eval()
    with torch.no_grad():
        logits, aux_logits = model.net(eval_input)
    assert aux_logits is None
    differences = {"eval_logits": max_abs_difference(logits, expected["eval_logits"])}

    model = _model(make_config, experiment, *overrides)  # fresh instance: batch statistics, drop-path 0
    _load_official(model, path)
    model.train()
    assert model.net.drop_path_prob == 0.0
    with torch.no_grad(), _torch_threads(GOLDEN_THREADS):
        logits, aux_logits = model.net(train_input)
    differences["train_logits"] = max_abs_difference(logits, expected["train_logits"])
    differences["train_logits_aux"] = max_abs_difference(aux_logits, expected["train_logits_aux"])
    assert max(differences.values()) <= TOLERANCE, differences


# ---------------------------------------------------------------------------------------------- files that do not fit
def _conversion_error(name: str, tmp_path: Path, experiment: str, *overrides: str, drop: str | None = None) -> str:
    path = _official_file(name, tmp_path / f"{name}.pt", drop=drop)
    with pytest.raises(OfficialWeightsError) as caught:
        convert(path, experiment, tmp_path / "out.ckpt", list(overrides))
    message = str(caught.value)
    assert str(path) in message
    assert not (tmp_path / "out.ckpt").exists()
    return message


def test_a_cifar_file_in_the_imagenet_experiment_names_the_file_and_key(tmp_path: Path) -> None:
    message = _conversion_error("darts_cifar10", tmp_path, "nas_train_imagenet", "model.net.genotype=DARTS_V2",
                                "model.net.auxiliary_batchnorm=false")
    assert "first `stem.0.weight`" in message
    assert "first `stem0.0.weight`" in message
    assert "use experiment=nas_train_cifar10" in message


def test_an_imagenet_file_in_the_cifar_experiment_names_the_file_and_key(tmp_path: Path) -> None:
    message = _conversion_error("pcdarts_imagenet", tmp_path, "nas_train_cifar10", "model.net.genotype=PC_DARTS_image")
    assert "first `stem0.0.weight`" in message
    assert "use experiment=nas_train_imagenet" in message


def test_another_genotype_names_the_first_unmatched_cell_key(tmp_path: Path) -> None:
    # The DARTS_V2 file into the P-DARTS network: same stem and head, other operations in the cells.
    message = _conversion_error("darts_cifar10", tmp_path, "nas_train_cifar10", "model.net.genotype=PDARTS")
    assert "no place in the network, first `cells.0._ops." in message
    assert "check model.net.genotype" in message


def test_pdarts_auxiliary_batchnorm_without_its_option_names_the_key_and_the_option(tmp_path: Path) -> None:
    message = _conversion_error("pdarts_imagenet", tmp_path, "nas_train_imagenet", "model.net.auxiliary_batchnorm=false")
    assert "5 official key(s) have no place in the network, first `auxiliary_head.features.6.weight`" in message
    assert message.endswith("set model.net.auxiliary_batchnorm=true.")


def test_darts_imagenet_file_in_the_pdarts_default_names_the_option(tmp_path: Path) -> None:
    message = _conversion_error("darts_imagenet", tmp_path, "nas_train_imagenet", "model.net.genotype=DARTS_V2")
    assert "5 network entr(ies) get no official weight, first `auxiliary_head.features.6.weight`" in message
    assert message.endswith("set model.net.auxiliary_batchnorm=false.")


def test_auxiliary_head_present_on_one_side_only_names_model_auxiliary_weight(make_config, tmp_path: Path) -> None:
    message = _conversion_error("pdarts_cifar10", tmp_path, "nas_train_cifar10", "model.net.genotype=PDARTS",
                                drop="auxiliary_head.")
    assert "first `auxiliary_head.features.2.weight`" in message and "set model.auxiliary_weight=0." in message
    message = _conversion_error("pdarts_cifar10", tmp_path, "nas_train_cifar10", "model.net.genotype=PDARTS",
                                "model.auxiliary_weight=0")
    assert "set model.auxiliary_weight=0.4" in message
    # A file without the head evaluates in a network without it: the official eval function.
    model = _model(make_config, "nas_train_cifar10", "model.net.genotype=PDARTS", "model.auxiliary_weight=0")
    _load_official(model, _official_file("pdarts_cifar10", tmp_path / "no_head.pt", drop="auxiliary_head."))
    with torch.no_grad():
        logits = model.eval()(_inputs("pdarts_cifar10")[0])
    assert max_abs_difference(logits, load_golden("pdarts_cifar10")["outputs"]["eval_logits"]) <= TOLERANCE


def test_auxiliary_batchnorm_on_the_cifar_network_is_refused(make_config) -> None:
    # An option of P-DARTS's ImageNet network (model/genotype_net=imagenet) only: the CIFAR head always has it.
    with pytest.raises(ConfigError, match=r"^`model.net` \(networks.nas.networks.NetworkCIFAR\): .*'auxiliary_batchnorm'"):
        _model(make_config, "nas_train_cifar10", "+model.net.auxiliary_batchnorm=true")


# ----------------------------------------------------------------------------------------------- through run.py
TEST_IMAGES = 8


def _evaluate_directly(cfg, official: Path, batches: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the golden-weight network (eval mode) and the targets, on the test loader's images."""
    datamodule = build(cfg.data, "data")
    datamodule.setup("test")
    model = build(cfg.model, "model")
    _load_official(model, official)
    model.eval()
    logits, targets = [], []
    with torch.no_grad():
        for index, (images, labels) in enumerate(datamodule.test_dataloader()):
            if batches is not None and index == batches:
                break
            logits.append(model(images))
            targets.append(labels)
    return torch.cat(logits), torch.cat(targets)


def _relabel_cifar_test_batch(data_dir: Path, predictions: torch.Tensor) -> torch.Tensor:
    """Rewrite test_batch (same images, official pickle format) so that the network is right on every even image;
    return the new labels."""
    path = data_dir / CIFAR10_FOLDER / "test_batch"
    with open(path, "rb") as stream:
        batch = pickle.load(stream, encoding="bytes")
    batch[b"labels"] = [int(p) if i % 2 == 0 else (int(p) + 1) % 10 for i, p in enumerate(predictions)]
    dump_python2_pickle(batch, path)
    return torch.tensor(batch[b"labels"])


def _cifar_with_known_accuracy(make_config, tmp_path: Path, golden: str, *overrides: str) -> tuple[Path, float]:
    """Tiny CIFAR-10 whose test labels make the official network exactly 50 % right; returns the official file and
    the cross-entropy of the official network on the test images."""
    write_cifar10(tmp_path / "data", num_train=10, num_test=TEST_IMAGES)
    official = _official_file(golden, tmp_path / "cifar10_model.pt")
    logits, _ = _evaluate_directly(make_config("experiment=nas_train_cifar10", *overrides, "data.num_workers=0"),
                                   official)
    targets = _relabel_cifar_test_batch(tmp_path / "data", logits.argmax(dim=1))
    assert float((logits.argmax(dim=1) == targets).float().mean()) == 0.5
    return official, float(F.cross_entropy(logits, targets))


@pytest.mark.parametrize("golden,genotype", [("darts_cifar10", "DARTS_V2"), ("pcdarts_cifar10", "PC_DARTS_cifar"),
                                             ("pdarts_cifar10", "PDARTS")])
def test_run_py_evaluates_the_official_cifar_file(make_config, tmp_path: Path, golden: str, genotype: str) -> None:
    official, loss = _cifar_with_known_accuracy(make_config, tmp_path, golden, f"model.net.genotype={genotype}")
    result = run_job(make_config("experiment=nas_train_cifar10", f"model.net.genotype={genotype}", "mode=test",
                                 f"ckpt_path={official}", "data.num_workers=0", "data.batch_size=8"))
    assert result["metrics"]["test/acc1"] == 0.5
    assert abs(result["metrics"]["test/loss"] - loss) <= TOLERANCE
    assert "official DARTS-family evaluation network NetworkCIFAR" in result["notes"]["start weights"]


@pytest.mark.slow  # a subprocess: ~15 s; run_job above runs the same path in the default run
def test_run_py_command_line_evaluates_cifar10_model_pt(make_config, tmp_path: Path) -> None:
    """The command of docs/architecture_search.md, as a user types it (relative ckpt_path)."""
    _, loss = _cifar_with_known_accuracy(make_config, tmp_path, "darts_cifar10", "model.net.genotype=DARTS_V2")
    completed = run_cli("experiment=nas_train_cifar10", "model.net.genotype=DARTS_V2", "mode=test",
                        "ckpt_path=cifar10_model.pt", f"paths.data_dir={tmp_path / 'data'}", "data.num_workers=0",
                        "logger=csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    (result_file,) = (tmp_path / "logs" / "nas_train_cifar10" / "runs").glob("*/result.json")
    metrics = json.loads(result_file.read_text())["metrics"]
    assert metrics["test/acc1"] == 0.5
    assert abs(metrics["test/loss"] - loss) <= TOLERANCE


def test_converted_checkpoint_tests_and_fine_tunes(make_config, tmp_path: Path) -> None:
    official, loss = _cifar_with_known_accuracy(make_config, tmp_path, "darts_cifar10", "model.net.genotype=DARTS_V2")
    converted = tmp_path / "x.ckpt"
    assert convert_main([str(official), "--experiment", "nas_train_cifar10", "--out", str(converted),
                         "model.net.genotype=DARTS_V2"]) == 0

    base = ["experiment=nas_train_cifar10", "model.net.genotype=DARTS_V2", f"ckpt_path={converted}", "data.num_workers=0"]
    result = run_job(make_config(*base, "mode=test", output_dir=tmp_path / "test"))
    assert result["metrics"]["test/acc1"] == 0.5
    assert abs(result["metrics"]["test/loss"] - loss) <= TOLERANCE

    # mode=train from the weights-only checkpoint: a fresh run starting from the official weights (lr 0 keeps
    # them, so the trained checkpoint shows where training started; BatchNorm statistics show it trained).
    run_job(make_config(*base, "mode=train", "model.optimizer.lr=0", "data.batch_size=2", "trainer.max_epochs=1",
                        "++trainer.limit_train_batches=1", "++trainer.limit_val_batches=1",
                        "++trainer.limit_test_batches=1", output_dir=tmp_path / "train"))
    trained = torch.load(tmp_path / "train" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    start = torch.load(converted, map_location="cpu", weights_only=False)["state_dict"]
    assert trained["global_step"] == 1
    parameters = [key for key in start if key.endswith(("weight", "bias"))]
    assert all(torch.equal(trained["state_dict"][key], start[key]) for key in parameters)
    assert not torch.equal(trained["state_dict"]["net.stem.1.running_mean"], start["net.stem.1.running_mean"])


def test_checkpoint_format_choices_are_named(make_config, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", num_train=10, num_test=2)
    converted = tmp_path / "x.ckpt"
    convert(_official_file("darts_cifar10", tmp_path / "cifar10_model.pt"), "nas_train_cifar10", converted,
            ["model.net.genotype=DARTS_V2"])
    base = ["experiment=nas_train_cifar10", "model.net.genotype=DARTS_V2", "mode=test", f"ckpt_path={converted}",
            "data.num_workers=0"]
    with pytest.raises(OfficialWeightsError, match=r"x\.ckpt does not fit .*first `net\.stem\.0\.weight`.*"
                                                   r"ckpt_format=auto \(the default\) or ckpt_format=lightning"):
        run_job(make_config(*base, "ckpt_format=official"))
    with pytest.raises(ConfigError, match=r"ckpt_format='bogus': use one of auto, lightning, official"):
        run_job(make_config(*base, "ckpt_format=bogus"))


@pytest.fixture(scope="module")
def imagenet_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What an ImageNet user has: 1000 class folders in train/ and val/ (here one 8x8 image each)."""
    root = tmp_path_factory.mktemp("imagenet_data")
    write_image_folder(root / "imagenet", num_classes=1000, images_per_class=1, image_size=8)
    return root


@pytest.mark.parametrize("golden", ["darts_imagenet", "pcdarts_imagenet", "pdarts_imagenet"])
def test_run_py_evaluates_the_official_imagenet_file(make_config, tmp_path: Path, imagenet_layout: Path,
                                                     golden: str) -> None:
    experiment, overrides, _ = GOLDEN[golden]
    official = _official_file(golden, tmp_path / "imagenet_model.pt")
    cfg = make_config(f"experiment={experiment}", *overrides, "mode=test", f"ckpt_path={official}",
                      f"paths.data_dir={imagenet_layout}", "data.num_workers=0", "data.batch_size=2",
                      "++trainer.limit_test_batches=1")
    logits, targets = _evaluate_directly(cfg, official, batches=1)
    result = run_job(cfg)
    assert result["metrics"]["test/acc1"] == float((logits.argmax(dim=1) == targets).float().mean())
    assert result["metrics"]["test/acc5"] == float((logits.topk(5).indices == targets[:, None]).any(1).float().mean())
    assert abs(result["metrics"]["test/loss"] - float(F.cross_entropy(logits, targets))) <= TOLERANCE


def test_a_cifar_file_given_to_the_imagenet_experiment_stops_run_py(make_config, tmp_path: Path,
                                                                    imagenet_layout: Path) -> None:
    official = _official_file("darts_cifar10", tmp_path / "cifar10_model.pt")
    with pytest.raises(OfficialWeightsError, match=r"cifar10_model\.pt does not fit NetworkImageNet .*first "
                                                   r"`stem\.0\.weight`"):
        run_job(make_config("experiment=nas_train_imagenet", "mode=test", f"ckpt_path={official}",
                            f"paths.data_dir={imagenet_layout}", "data.num_workers=0"))
    assert not (tmp_path / "run" / "result.json").exists()
