"""The official Pruning from Scratch files (frankwang345/pruning-from-scratch): per-layer channel lists
(script/prune_model.py's ``pruned_cfg-<p>.pkl``) as ``model.net.structure``, and the official checkpoints (bare state
dicts of models/resnet.py and models/vgg.py, script/train_pruned.py / learn_gates.py) through ``ckpt_path=``,
checked against the golden outputs of the official models (``tests/fixtures/golden/pfs_*.pt``)."""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn import functional as F

from datamodules.writers import write_cifar10
from lightning_modules.pruning import GateLearning, PrunedClassifier
from networks.classification import build_backbone, cifar_resnet, vgg
from networks.pruning.gates import ChannelGate
from networks.pruning.official import official_structure
from networks.pruning.structure import budget_epochs, pruned_network
from tests.golden import golden_state_dict, load_golden, max_abs_difference, write_official_file
from visionsuite.errors import ConfigError
from visionsuite.official_weights import OfficialWeightsError, load_converted, load_official_file
from visionsuite.pipeline import run

RESNET56_PRUNED_CFG = [8] * 9 + [16] * 9 + [32] * 9
VGG16_PRUNED_CFG = [32, 32, "M", 64, 64, "M", 128, 128, 128, "M", 256, 256, 256, "M", 256, 256, 256]
#: golden file -> (backbone, official per-layer list or None for the full network at its default width)
GOLDEN = {
    "pfs_resnet56_cifar10": ("resnet56", None),
    "pfs_resnet56_pruned_cifar10": ("resnet56", RESNET56_PRUNED_CFG),
    "pfs_vgg16_cifar10": ("vgg16_bn", None),
    "pfs_vgg16_pruned_cifar10": ("vgg16_bn", VGG16_PRUNED_CFG),
}
RELATIVE_TOLERANCE = 1e-6  # of the largest golden logit (float32; the ResNet logits reach ~108)
OFFICIAL_MEAN = (0.4914, 0.4822, 0.4465)  # script/train_pruned.py's transform_val
OFFICIAL_STD = (0.2023, 0.1994, 0.2010)


@lru_cache(maxsize=4)
def _golden_state(name: str) -> dict[str, torch.Tensor]:
    """The golden file's official state dict (rebuilt once per file; callers never change its tensors)."""
    return golden_state_dict(load_golden(name)["keys"])


def _write_cfg(path: Path, cfg: Any) -> Path:
    """Pickle a list as script/prune_model.py does (misc.dump_pickle: pickle.HIGHEST_PROTOCOL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as stream:
        pickle.dump(cfg, stream, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _classifier(backbone: str, structure: Path | None = None, expansion: int | None = None) -> PrunedClassifier:
    net = pruned_network(backbone, 10, width_multiplier=1.0, structure=None if structure is None else str(structure),
                         official_expansion=expansion)
    return PrunedClassifier(net, num_classes=10)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_official_checkpoints_compute_the_official_outputs(tmp_path: Path, name: str) -> None:
    """The golden state dict, written as script/train_pruned.py saves it, converted into the network the
    official list builds (the pruned ResNet at the golden file's residual width 16), gives the golden logits."""
    golden = load_golden(name)
    backbone, cfg = GOLDEN[name]
    folder = "channel-16-sparsity-0.20" if backbone == "resnet56" else "channel-64-sparsity-0.20"  # the golden -e
    structure = None if cfg is None else _write_cfg(tmp_path / folder / "pruned_cfg-0.50.pkl", cfg)
    module = _classifier(backbone, structure)
    official = write_official_file(tmp_path / "best_checkpoint.pth", dict(_golden_state(name)))
    form = module.official_format()
    load_official_file(form.network, official, form.convert_key, description=form.description)
    module.eval()
    with torch.no_grad():
        logits = module.net(golden["inputs"])
    expected = golden["outputs"]["eval_logits"]
    difference = max_abs_difference(logits, expected)
    print(f"{name}: max |difference| {difference:.3g} (largest logit {float(expected.abs().max()):.4g})")
    assert difference <= RELATIVE_TOLERANCE * float(expected.abs().max())


@pytest.mark.parametrize("name", ["pfs_resnet56_pruned_cifar10", "pfs_vgg16_pruned_cifar10"])
def test_official_gate_checkpoints_place_each_gate_after_its_bn(name: str) -> None:
    """script/learn_gates.py's checkpoint.pth (gate.py adds ``<layer>.gates``) loads into gate learning; the gate
    multiplies the BN output before the ReLU, so the gated network equals the plain one with the gates folded
    into the BN's affine parameters (gate.py's forward)."""
    golden = load_golden(name)
    backbone, cfg = GOLDEN[name]
    channels = [entry for entry in cfg if entry != "M"]
    state = _golden_state(name)
    bn = ".bn1." if backbone == "resnet56" else ".bn."
    layers = sorted({key.split(bn)[0] for key in state if bn in key and key.startswith(("layer", "feature"))})
    generator = torch.Generator().manual_seed(0)
    gated, folded = dict(state), dict(state)
    for layer in layers:
        gates = torch.rand(state[f"{layer}{bn}weight"].numel(), generator=generator)
        gated[f"{layer}.gates"] = gates
        folded[f"{layer}{bn}weight"] = state[f"{layer}{bn}weight"] * gates
        folded[f"{layer}{bn}bias"] = state[f"{layer}{bn}bias"] * gates
    learner = GateLearning(build_backbone(backbone, 10, width_multiplier=1.0, channels=channels, gate_layer=ChannelGate),
                           num_classes=10)
    form = learner.official_format()
    load_converted(form.network, gated, form.convert_key, source="checkpoint.pth")
    plain = (cifar_resnet.resnet56(10, channels=channels) if backbone == "resnet56"
             else vgg.vgg16_bn(10, channels=channels)).eval()
    load_converted(plain, folded, form.convert_key, source="folded")
    learner.eval()
    with torch.no_grad():
        expected = plain(golden["inputs"])
        difference = max_abs_difference(learner.net(golden["inputs"]), expected)
    assert difference <= 1e-5 * float(expected.abs().max())
    first = learner.gate_modules[0].gates
    assert torch.equal(first, gated[f"{layers[0]}.gates"]) and len(learner.gate_modules) == len(layers)


def test_an_official_list_builds_the_official_widths_and_residual_width(tmp_path: Path) -> None:
    cfg = RESNET56_PRUNED_CFG
    default = _write_cfg(tmp_path / "renamed" / "pruned_cfg-0.70.pkl", cfg)  # no channel-<e> folder: -e 80
    structure = official_structure(default, backbone="resnet56")
    assert structure.width_multiplier == 5.0 and structure.extra["official_expansion"] == 80
    assert structure.channels == cfg and structure.target == 0.7
    module = _classifier("resnet56", default)
    assert module.net.conv1.out_channels == 80 and module.net.linear.in_features == 320
    assert [block.conv1.out_channels for stage in (module.net.layer1, module.net.layer2, module.net.layer3)
            for block in stage] == cfg
    assert "residual width 80" in module.official_format().description
    folder = _write_cfg(tmp_path / "channel-24-sparsity-0.20" / "pruned_cfg-0.50.pkl", cfg)
    assert _classifier("resnet56", folder).net.layer3[0].conv2.out_channels == 96  # 4e, e from the folder
    assert _classifier("resnet56", folder, expansion=16).net.conv1.out_channels == 16  # model.net.official_expansion
    # VGG: the list gives every width; the pooling positions are the official ones.
    module = _classifier("vgg16_bn", _write_cfg(tmp_path / "vgg" / "pruned_cfg-0.50.pkl", VGG16_PRUNED_CFG))
    convs = [layer.conv.out_channels for layer in module.net.features if hasattr(layer, "conv")]
    assert convs == [entry for entry in VGG16_PRUNED_CFG if entry != "M"]
    assert [type(layer).__name__ for layer in module.net.features][2] == "MaxPool2d"
    # Scratch-B length from the file name's p (script/train_pruned.py's -p): int(160 / (1 - 0.7)).
    assert budget_epochs(160, str(default), True) == int(1 / (1 - 0.7) * 160)
    renamed = _write_cfg(tmp_path / "channel-16-sparsity-0.20" / "resnet56.pkl", cfg)  # no p: the measured reduction
    measured = official_structure(renamed)
    assert measured.backbone == "resnet56" and measured.extra["target_from"] == "measured"
    assert budget_epochs(160, str(renamed), True) == int(1 / (1 - measured.target) * 160) == 318  # reduction 0.4972


@pytest.mark.parametrize(("backbone", "cfg", "message"), [
    ("resnet56", [8] * 26, r"26 entries, but the official resnet56 list has 27 entries"),
    ("resnet56", [8] * 54, r"54 entries.*\(the layout of resnet110: build that backbone\)"),
    ("resnet56", [8] * 26 + [0], r"entry 26 is 0; every layer keeps at least one channel"),
    ("resnet56", [8] * 26 + [8.0], r"entry 26 is 8.0 \(float\); every layer's width must be an int"),
    ("resnet56", [8] * 26 + ["8"], r"entry 26 is '8' \(str\)"),
    ("resnet56", [8] * 26 + ["M"], r"entry 26 is 'M', but resnet56 has a convolution"),
    ("vgg16_bn", [c for c in VGG16_PRUNED_CFG if c != "M"] + [1] * 4, r"entry 2 is 64, but vgg16_bn has a max-pool"),
    ("resnet56", {"cfg": [8] * 27}, r"holds a dict, not the per-layer channel list"),
    ("resnet56", [8] * 26 + [torch.tensor(8)], r"not an official per-layer channel list.*refers to torch"),
    ("resnet56", [8] * 26 + [400], r"layer 26 keeps 400 channels, more than the 320 .* -e 80.*give official_expansion"),
])
def test_bad_official_lists_get_one_error_naming_the_file(tmp_path: Path, backbone: str, cfg: Any,
                                                         message: str) -> None:
    path = _write_cfg(tmp_path / "pruned_cfg-0.50.pkl", cfg)
    with pytest.raises(ValueError, match=message) as error:
        _classifier(backbone, path)
    assert str(error.value).startswith(f"structure={path}: ")  # the config layer names it model.net.structure


def test_a_checkpoint_of_another_network_is_refused_naming_the_layer(tmp_path: Path) -> None:
    """The full network's file into the pruned structure, and a gate-learning file into the classifier."""
    structure = _write_cfg(tmp_path / "channel-16-sparsity-0.20" / "pruned_cfg-0.50.pkl", RESNET56_PRUNED_CFG)
    module = _classifier("resnet56", structure)
    form = module.official_format()
    full = write_official_file(tmp_path / "full.pth", _golden_state("pfs_resnet56_cifar10"))
    with pytest.raises(OfficialWeightsError, match=r"full\.pth does not fit CifarResNet as CIFAR ResNet-56 "
                       r".*residual width 16.*`layer1\.0\.conv1\.weight` has shape \(16, 16, 3, 3\) but the "
                       r"network's `layer1\.0\.conv1\.weight` has \(8, 16, 3, 3\)"):
        load_official_file(form.network, full, form.convert_key, description=form.description)
    state = dict(_golden_state("pfs_resnet56_pruned_cifar10"))
    state["layer1.0.gates"] = torch.ones(8)
    gated = write_official_file(tmp_path / "checkpoint.pth", state)
    with pytest.raises(OfficialWeightsError, match=r"1 official key\(s\) have no place in the network, first "
                                                   r"`layer1\.0\.gates`"):
        load_official_file(form.network, gated, form.convert_key, description=form.description)
    with pytest.raises(ConfigError, match=r"^model.net.name=mobilenet_v2: the official .* CIFAR files"):
        PrunedClassifier(pruned_network("mobilenet_v2", 10), num_classes=10).official_format()


def _tiny_cifar10(data_dir: Path) -> dict[str, Any]:
    """A tiny CIFAR-10 in the official pickle format; returns its test batch."""
    root = write_cifar10(data_dir, num_train=10, num_test=60) / "cifar-10-batches-py"
    with open(root / "test_batch", "rb") as stream:
        return pickle.load(stream, encoding="latin1")


def _direct_metrics(state: dict[str, torch.Tensor], batch: dict[str, Any], std: tuple[float, ...]) -> dict[str, float]:
    """The golden-weight network on the test batch, preprocessed as script/train_pruned.py does (ToTensor,
    Normalize), without the suite's pipeline."""
    network = cifar_resnet.resnet56(10, channels=RESNET56_PRUNED_CFG).eval()
    network.load_state_dict(state)  # the official names are the suite's (models/resnet.py)
    images = torch.from_numpy(batch["data"]).view(-1, 3, 32, 32).float().div(255)
    images = images.sub(torch.tensor(OFFICIAL_MEAN).view(1, 3, 1, 1)).div(torch.tensor(std).view(1, 3, 1, 1))
    targets = torch.tensor(batch["labels"])
    with torch.no_grad():
        logits = network(images)
    top5 = logits.topk(5, dim=1).indices
    return {"test/acc1": float((logits.argmax(1) == targets).float().mean()),
            "test/acc5": float((top5 == targets[:, None]).any(1).float().mean()),
            "test/loss": float(F.cross_entropy(logits, targets))}


def test_run_py_evaluates_an_official_checkpoint_at_an_official_list(make_config, tmp_path: Path) -> None:
    """experiment=pfs_cifar10_retrain model.net.structure=<pruned_cfg pickle> mode=test ckpt_path=<best_checkpoint.pth>
    on CIFAR-10 pickles: the logged metrics are those of the golden-weight network computed directly."""
    batch = _tiny_cifar10(tmp_path / "data")
    cfg = _write_cfg(tmp_path / "logs" / "channel-16-sparsity-0.20" / "pruned_cfg-0.50.pkl", RESNET56_PRUNED_CFG)
    state = dict(_golden_state("pfs_resnet56_pruned_cifar10"))
    checkpoint = write_official_file(tmp_path / "logs" / "channel-16-pruned-0.50-B" / "best_checkpoint.pth", state)
    # The random golden weights predict one class for every image, so the accuracies check little; the loss
    # depends on every logit of every image (and on the normalisation: below).
    expected = _direct_metrics(state, batch, OFFICIAL_STD)
    result = run(make_config("experiment=pfs_cifar10_retrain", f"model.net.structure={cfg}", "mode=test",
                             f"ckpt_path={checkpoint}", "data.batch_size=25", "data.num_workers=0"))
    metrics = result["metrics"]
    assert metrics["test/acc1"] == pytest.approx(expected["test/acc1"], abs=1e-9)
    assert metrics["test/acc5"] == pytest.approx(expected["test/acc5"], abs=1e-9)
    assert metrics["test/loss"] == pytest.approx(expected["test/loss"], rel=1e-5)
    # The dataset's own statistics (std 0.247...) give another loss: the official normalisation matters.
    assert abs(_direct_metrics(state, batch, (0.2470, 0.2435, 0.2616))["test/loss"] - expected["test/loss"]) > 1e-3
    assert "residual width 16" in result["notes"]["start weights"]
    assert "residual width 16 from its folder channel-16-sparsity-0.20" in result["notes"]["structure"]


def test_run_py_refuses_the_full_checkpoint_at_a_pruned_list(make_config, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data", num_train=10, num_test=10)
    cfg = _write_cfg(tmp_path / "channel-16-sparsity-0.20" / "pruned_cfg-0.50.pkl", RESNET56_PRUNED_CFG)
    full = write_official_file(tmp_path / "full.pth", _golden_state("pfs_resnet56_cifar10"))
    with pytest.raises(OfficialWeightsError, match=r"full\.pth does not fit .*`layer1\.0\.conv1\.weight`"):
        run(make_config("experiment=pfs_cifar10_retrain", f"model.net.structure={cfg}", "mode=test",
                        f"ckpt_path={full}", "data.num_workers=0"))


def test_an_official_list_trains_like_a_structure_json(make_config, tmp_path: Path) -> None:
    """Retraining from an official list: the network at its widths and residual width, Scratch-B from its p."""
    cfg = _write_cfg(tmp_path / "channel-8-sparsity-0.20" / "pruned_cfg-0.50.pkl", [2, 3, 4, 5, 6, 7, 8, 9, 10])
    result = run(make_config("experiment=pfs_digits_retrain", "model/backbone=resnet20",
                             f"model.net.structure={cfg}", "retrain_epochs=1", "data.batch_size=16",
                             "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                             "trainer.limit_test_batches=1"))
    checkpoint = torch.load(result["artifacts"]["last_checkpoint"], map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == 2  # Scratch-B: int(1 / (1 - 0.5)) epochs of one batch
    state = checkpoint["state_dict"]
    assert tuple(state["net.conv1.weight"].shape) == (8, 3, 3, 3)  # residual width e = 8 (its folder)
    assert [state[f"net.layer{s}.{b}.conv1.weight"].shape[0] for s in (1, 2, 3) for b in range(3)] == list(range(2, 11))
    assert tuple(state["net.linear.weight"].shape) == (10, 32)
    assert "test/acc1" in result["metrics"]


def test_the_vgg_converter_renames_only_official_keys() -> None:
    tensor = torch.zeros(1)
    assert vgg.official_key_to_suite("feature.14.bn.running_var", tensor)[0] == "features.14.bn.running_var"
    assert vgg.official_key_to_suite("feature.3.gates", tensor)[0] == "features.3.gate.gates"
    assert vgg.official_key_to_suite("classifier.bias", tensor)[0] == "classifier.bias"
    assert vgg.official_key_to_suite("features.0.conv.weight", tensor) is None
    assert cifar_resnet.official_key_to_suite("layer2.0.shortcut.1.running_mean", tensor)[0] == (
        "layer2.0.shortcut.1.running_mean")
    assert cifar_resnet.official_key_to_suite("layer2.0.gate1.gates", tensor) is None
