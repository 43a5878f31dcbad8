"""The layer every method stands on: one module base, one monitor, one source per preset, shared schedules."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import networks.detection.centernet as centernet_presets
from lightning_modules.centernet import CenterNetDetector
from lightning_modules.nas import ArchitectureSearch, GenotypeClassifier
from networks.nas.arch_gradients import SecondOrderGradient, build_arch_gradient
from tests.helpers import CONFIG_DIR, REPO_ROOT
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.module import SuiteModule
from visionsuite.pipeline import run_job

METHOD_MODULES = ("nas.py", "centernet.py")
CENTERNET_MODEL_CONFIGS = sorted(path.stem for path in (CONFIG_DIR / "model").glob("centernet*.yaml"))
#: The CenterNet network's own arguments (the class count is shared with the module through ${..num_classes}).
CENTERNET_NETWORK_KEYS = set(inspect.signature(centernet_presets.CenterNet).parameters) - {"num_classes"}


@pytest.mark.parametrize("module", [GenotypeClassifier, ArchitectureSearch, CenterNetDetector])
def test_every_method_module_is_a_suite_module(module: type) -> None:
    assert issubclass(module, SuiteModule)
    assert "configure_optimizers" not in vars(module)  # the base's, bound to optimizer_parameters()


def test_method_modules_keep_no_copy_of_the_shared_pieces() -> None:
    for name in METHOD_MODULES:
        source = (REPO_ROOT / "lightning_modules" / name).read_text()
        for copied in ("OmegaConf.to_container", "def configure_optimizers", "Callable[..., torch.optim",
                       "add_image", "log_image", "def ensure_finite", "metrics.classification import ensure"):
            assert copied not in source, f"{name} keeps its own {copied!r}"
    assert "from metrics.classification" not in (REPO_ROOT / "lightning_modules" / "centernet.py").read_text()


def test_visionsuite_names_no_method() -> None:
    """What runs and reports a job knows no method's artifacts (modules declare their headline and notes)."""
    for name in ("pipeline.py", "reporting.py", "module.py", "instantiate.py"):
        text = (REPO_ROOT / "visionsuite" / name).read_text().lower()
        for word in ("genotype", "normal_cell", "centernet", "darts"):
            assert word not in text, f"visionsuite/{name} names {word!r}"


def test_metrics_and_networks_import_without_lightning_or_hydra() -> None:
    """Every module of metrics/ and networks/ is usable without Lightning, Hydra or OmegaConf (one subprocess with
    those imports blocked); only the phase tasks (``networks/*/tasks.py``) belong to the config layer."""
    modules = [".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
               for package in ("metrics", "networks") for path in sorted((REPO_ROOT / package).rglob("*.py"))
               if path.name != "tasks.py"]
    assert "metrics.segmentation" in modules and "networks.nas.search_space" in modules
    blocked = "pytorch_lightning lightning hydra omegaconf".split()
    code = f"import importlib, sys\nfor name in {blocked!r}: sys.modules[name] = None\n" \
           f"for module in {modules!r}: importlib.import_module(module)\n"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]


# ------------------------------------------------------------------------------------------- one monitor
NAS_AND_DETECTION = ("amended_", "centernet", "darts_", "nas_train_", "pcdarts_", "pdarts")


def test_experiments_set_the_monitor_once_and_copy_no_checkpoint_settings() -> None:
    for path in sorted((CONFIG_DIR / "experiment").rglob("*.yaml")):
        if not path.stem.startswith(NAS_AND_DETECTION) and path.parent.name != "pdarts":
            continue  # the families of this layer; each new method keeps the same rule in its own tests
        config = yaml.safe_load(path.read_text()) or {}
        checkpoint = ((config.get("callbacks") or {}).get("model_checkpoint") or {})
        assert "monitor" not in checkpoint and "mode" not in checkpoint, path.name
        assert "optimized_metric" not in config, path.name


@pytest.mark.parametrize("experiment,monitor", [("centernet_shapes", "val/AP"), ("centernet104_coco", "val/AP"),
                                                ("darts_digits", "val/acc1"), ("nas_train_cifar10", "val/acc1")])
def test_checkpoint_early_stopping_and_sweeper_read_the_one_monitor(make_config, experiment: str,
                                                                    monitor: str) -> None:
    cfg = make_config(f"experiment={experiment}", "callbacks=early_stopping")
    assert cfg.monitor == monitor and cfg.optimized_metric == monitor
    assert cfg.callbacks.model_checkpoint.monitor == monitor and cfg.callbacks.model_checkpoint.mode == "max"
    assert cfg.callbacks.early_stopping.monitor == monitor and cfg.callbacks.early_stopping.mode == "max"


# --------------------------------------------------------------------------------------- shared schedules
@pytest.mark.parametrize("experiment", ["darts_digits", "nas_train_digits", "centernet_shapes"])
def test_model_scheduler_group_works_for_every_model_with_a_scheduler(make_config, experiment: str) -> None:
    cfg = make_config(f"experiment={experiment}", "model/scheduler=step_decay")
    assert cfg.model.scheduler._target_ == "torch.optim.lr_scheduler.StepLR"


def test_the_search_and_centernet_keep_their_papers_schedules(make_config) -> None:
    search = make_config("experiment=darts_cifar10").model.scheduler
    assert search._target_.endswith("CosineAnnealingLR") and search.eta_min == 0.001 and search.T_max == 50
    coco = make_config("experiment=centernet104_coco").model.scheduler
    assert coco._target_.endswith("MultiStepLR") and list(coco.milestones) == [450000] and coco.gamma == 0.1
    assert list(make_config("experiment=centernet_shapes").model.scheduler.milestones) == [500]


# ------------------------------------------------------------------------------------- one preset source
@pytest.mark.parametrize("name", CENTERNET_MODEL_CONFIGS)
def test_centernet_model_configs_inject_a_python_preset_and_repeat_none_of_it(name: str) -> None:
    config = yaml.safe_load((CONFIG_DIR / "model" / f"{name}.yaml").read_text())
    repeated = sorted(set(config) & CENTERNET_NETWORK_KEYS)
    assert not repeated, f"conf/model/{name}.yaml repeats the preset's {repeated}: set them in the preset"
    assert set(config["net"]) <= {"_target_", "num_classes"}
    module, function = config["net"]["_target_"].rsplit(".", 1)
    assert module == "networks.detection.centernet" and callable(getattr(centernet_presets, function))


def test_the_centernet_module_receives_its_network_built_and_repeats_none_of_its_arguments() -> None:
    arguments = inspect.signature(CenterNetDetector).parameters
    assert arguments["net"].default is inspect.Parameter.empty  # no second way to build the network
    assert not set(arguments) & CENTERNET_NETWORK_KEYS


def test_the_demo_trains_the_python_preset(make_config) -> None:
    cfg = make_config("experiment=centernet_shapes")
    detector = build(cfg.model, "model")
    torch.manual_seed(0)
    preset = centernet_presets.centernet_tiny(num_classes=3)
    assert detector.net.config == preset.config
    assert sum(p.numel() for p in detector.net.parameters()) == sum(p.numel() for p in preset.parameters())
    recorded = CENTERNET_NETWORK_KEYS - {"in_channels"}  # the network trained, in the logged hyper-parameters
    assert {key: detector.hparams[key] for key in recorded} == {key: preset.config[key] for key in recorded}
    assert preset.config["pool_channels"] == 16  # what the demo has always trained


def test_presets_are_functions_of_the_network_file_only() -> None:
    presets = [name for name, value in vars(centernet_presets).items()
               if inspect.isfunction(value) and name.startswith("centernet")]
    assert sorted(presets) == ["centernet104", "centernet52", "centernet_tiny"]


# ------------------------------------------------------------------ weight optimizers second order can model
def test_second_order_refuses_a_weight_optimizer_it_cannot_replay() -> None:
    weights = [torch.nn.Parameter(torch.ones(3))]
    gradient = build_arch_gradient("second_order")
    gradient.check_weight_optimizer(torch.optim.SGD(weights, lr=0.1, momentum=0.9))
    for optimizer in (torch.optim.Adam(weights, lr=0.1), torch.optim.SGD(weights, lr=0.1, momentum=0.9, nesterov=True)):
        with pytest.raises(ValueError, match="^the weight optimizer is"):
            gradient.check_weight_optimizer(optimizer)
        with pytest.raises(ValueError, match="^the weight optimizer is"):
            SecondOrderGradient.virtual_step(weights, [torch.zeros(3)], optimizer)
    build_arch_gradient("amended").check_weight_optimizer(torch.optim.Adam(weights, lr=0.1))  # needs no step


def test_second_order_with_adam_stops_with_the_key_before_training(make_config, tmp_path: Path) -> None:
    cfg = make_config("experiment=darts_digits", "model.arch_step.gradient=second_order",
                      "model.weight_optimizer._target_=torch.optim.Adam", "~model.weight_optimizer.momentum",
                      "model.net.init_channels=4", "model.net.layers=3", "trainer.limit_train_batches=1")
    with pytest.raises(ConfigError, match="^model.arch_step.gradient=second_order cannot use model.weight_optimizer: "
                                          "the weight optimizer is torch.optim.adam.Adam"):
        run_job(cfg)
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


# ------------------------------------------------------------------------------------------------ summary
def test_a_chain_summary_shows_what_its_phases_declared(tmp_path: Path) -> None:
    import io
    import json

    from rich.console import Console

    from visionsuite.reporting import print_summary

    search, train = tmp_path / "search", tmp_path / "train"
    for folder, result in ((search, {"headline": ["genotype", "normal_cell"], "notes": {"genotype": "node 0 = a"}}),
                           (train, {"headline": [], "notes": {"tested checkpoint": "last (validation is ...)"}})):
        folder.mkdir()
        (folder / "result.json").write_text(json.dumps(result))
    chain = {
        "task_name": "chain", "mode": "phases", "output_dir": str(tmp_path), "metrics": {"test/acc1": 0.5},
        "artifacts": {"search.genotype": str(search / "genotype.json"), "search.normal_cell": str(search / "n.png"),
                      "search.arch_weights": str(search / "a.png"), "train.last_checkpoint": str(train / "l.ckpt")},
        "phases": [{"name": "search", "status": "ran", "output_dir": str(search)},
                   {"name": "train", "status": "ran", "output_dir": str(train)}],
    }
    output = io.StringIO()
    print_summary(chain, Console(file=output, width=200))
    text = output.getvalue()
    for shown in ("search.genotype", "search.normal_cell", "train.last_checkpoint", "node 0 = a",
                  "tested checkpoint", "last (validation is ...)"):
        assert shown in text
    assert "search.arch_weights" not in text  # not declared as a headline by its phase


# ------------------------------------------------------------------------------------- seeded loaders
def test_every_datamodule_family_trains_from_the_epoch_seeded_loader(tmp_path: Path) -> None:
    from datamodules.coco import CocoDataModule
    from datamodules.digits import DigitsDataModule
    from datamodules.sampling import EpochSeededDataLoader, EpochSeededRandomSampler
    from datamodules.writers.coco import write_tiny_coco

    digits = DigitsDataModule(batch_size=8, image_size=16)
    digits.setup("fit")
    root = write_tiny_coco(tmp_path / "coco", num_images=4)
    coco = CocoDataModule(str(root), train_split="train", val_split="val", test_split="val", input_size=64,
                          batch_size=2, num_workers=1)
    coco.setup("fit")
    for datamodule in (digits, coco):
        loader = datamodule.train_dataloader()
        assert isinstance(loader, EpochSeededDataLoader) and isinstance(loader.sampler, EpochSeededRandomSampler)
        assert not loader.persistent_workers  # fresh workers seeded from (seed, epoch) every epoch


# A network's own argument check (or a file it reads) reaches the user as one error naming the key they typed.
NETWORK_ERRORS = [
    (["experiment=classify_cifar10", "model.net.width_multiplier=0"], r"^model.net.width_multiplier=0: must be > 0"),
    (["experiment=pfs_cifar10_retrain", "model.net.structure=/absent/structure.json"],
     r"^model.net.structure=/absent/structure.json: no such file"),
    (["experiment=nas_train_digits", "model.net.genotype=DARTS_V3"],
     r"^model.net.genotype='DARTS_V3' is not a published genotype"),
    (["experiment=darts_digits", "model.net.stem=mobile"], r"^model.net.stem='mobile': use one of cifar, imagenet"),
    (["experiment=logit_defense_defender_digits", "model.net.attack_names=[pgd]", "model.net.num_classes=1"],
     r"^model.net.num_classes must be an integer >= 2"),
]


@pytest.mark.parametrize(("overrides", "message"), NETWORK_ERRORS)
def test_a_network_error_reaches_the_user_as_its_key(make_config, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(make_config(*overrides).model, "model")


def test_a_network_argument_error_is_named_by_its_config_key() -> None:
    # Networks raise plain ValueError naming their argument; the config layer adds the key path the user typed.
    from omegaconf import OmegaConf

    from visionsuite.errors import ConfigError
    from visionsuite.instantiate import build

    cfg = OmegaConf.create({"model": {"_target_": "torch.nn.Sequential", "net": {
        "_target_": "torchvision.models.resnet.ResNet", "block": "x", "layers": [1], "num_classes": 3,
        "replace_stride_with_dilation": [True, False]}}})
    with pytest.raises(ConfigError, match=r"^model\.net\.replace_stride_with_dilation should be None or a 3-element"):
        build(cfg.model, "model")
    cfg.model.net = {"_target_": "torch.nn.Dropout", "p": 1.5}  # a message that does not start with an argument
    with pytest.raises(ConfigError, match=r"^`model\.net` \(torch\.nn\.Dropout\): dropout probability"):
        build(cfg.model, "model")


def test_the_core_imports_no_method_package() -> None:
    # visionsuite/ is the shared machinery: a method registers itself (configs name its functions), never the reverse.
    import ast

    method_packages = {"networks", "lightning_modules", "datamodules", "metrics", "callbacks"}
    offenders = []
    for path in sorted((REPO_ROOT / "visionsuite").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in method_packages]
    assert not offenders


def test_task_name_is_the_experiments_name_unless_set(make_config) -> None:
    # No experiment file restates its own name; the run directory and the W&B run are named after the experiment.
    assert make_config("experiment=pcdarts_cifar10").task_name == "pcdarts_cifar10"
    assert make_config("experiment=nas_train_digits", "task_name=mine").task_name == "mine"
    assert make_config("experiment=nas_train_digits", "debug=limit").task_name == "debug"
    restating = [path.name for path in (CONFIG_DIR / "experiment").rglob("*.yaml")
                 if any(line.startswith("task_name:") for line in path.read_text().splitlines())]
    assert not restating


def test_a_bad_optimizer_or_scheduler_value_is_named_by_its_key(make_config) -> None:
    # Partials are called when training starts, outside build(): their argument errors still name the key.
    from visionsuite.errors import ConfigError
    from visionsuite.instantiate import build

    module = build(make_config("experiment=classify_digits", "model.optimizer.lr=-1").model, "model")
    with pytest.raises(ConfigError, match=r"^`model\.optimizer` \(torch\.optim\.sgd\.SGD\): Invalid learning rate"):
        module.configure_optimizers()
    module = build(make_config("experiment=mcnl_demo", "model.scheduler.constant_epochs=-1").model, "model")
    with pytest.raises(ConfigError, match=r"^model\.scheduler\.constant_epochs must be >= 0"):
        module.configure_optimizers()


def test_a_value_that_cannot_be_resolved_names_its_key() -> None:
    # ${call:...} runs a method's function while Hydra builds the object: its refusal names the key, not a traceback.
    from omegaconf import OmegaConf

    from visionsuite.errors import ConfigError
    from visionsuite.instantiate import build

    cfg = OmegaConf.create({"model": {"_target_": "torch.nn.Identity",
                                      "net": {"_target_": "torch.nn.Identity", "x": "${call:math.sqrt,-1}"}}})
    with pytest.raises(ConfigError, match=r"^model\.net\.x \(\$\{call:math\.sqrt,-1\}\): math domain error$"):
        build(cfg.model, "model")
