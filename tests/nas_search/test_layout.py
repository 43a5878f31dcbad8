"""Where the DARTS family's pieces are and how they are built: injected networks, networks that name their own
arguments (never a config key), modules with few arguments, the callback and the P-DARTS depth from the plan."""

from __future__ import annotations

import inspect
import re

import pytest
import yaml

from lightning_modules.nas import ArchitectureSearch, GenotypeClassifier
from networks.nas.networks import NetworkCIFAR, NetworkImageNet
from networks.nas.progressive import stage_layers
from networks.nas.search_space import SearchNetwork
from tests.helpers import CONFIG_DIR, REPO_ROOT
from visionsuite.errors import ConfigError
from visionsuite.instantiate import build
from visionsuite.module import SuiteModule


@pytest.mark.parametrize("module", [ArchitectureSearch, GenotypeClassifier])
def test_the_modules_take_a_built_network_and_few_arguments(module: type) -> None:
    assert issubclass(module, SuiteModule) and "configure_optimizers" not in vars(module)
    parameters = inspect.signature(module).parameters
    assert "net" in parameters and len(parameters) <= 12


@pytest.mark.parametrize("config, networks", [("darts_search", [SearchNetwork]),
                                              ("nas_train", [NetworkCIFAR, NetworkImageNet])])
def test_the_model_configs_inject_the_network_and_repeat_none_of_its_arguments(config: str, networks: list) -> None:
    model = yaml.safe_load((CONFIG_DIR / "model" / f"{config}.yaml").read_text())
    arguments = {name for network in networks for name in inspect.signature(network).parameters}
    assert set(model["net"]) - {"_target_"} <= arguments
    assert not (set(model) - {"net"}) & (arguments - {"num_classes"}), "the module repeats the network's arguments"
    assert model["net"]["num_classes"] == "${..num_classes}"
    targets = [model["net"].get("_target_")] + [
        yaml.safe_load(path.read_text())["_target_"] for path in (CONFIG_DIR / "model" / "genotype_net").glob("*.yaml")
        if config == "nas_train"]
    assert {target for target in targets if target} == {f"{n.__module__}.{n.__name__}" for n in networks}


def test_networks_name_their_arguments_and_no_config_key() -> None:
    for path in sorted((REPO_ROOT / "networks" / "nas").glob("*.py")):
        source = path.read_text()
        assert not re.search(r"model\.[a-z]", source.replace("model.py", "")), f"{path.name} names a config key"
        raised = re.findall(r"raise ConfigError\(\s*f?\"\{?(\w+)", source)
        assert set(raised) <= {"source", "path"}, f"{path.name}: ConfigError only names a file it reads"
    with pytest.raises(ValueError, match=r"^partial_channel_k=3 must divide init_channels=16"):
        SearchNetwork(16, 10, 8, partial_channel_k=3)
    with pytest.raises(ValueError, match=r"^init_channels=5: must be even"):
        NetworkImageNet(5, 10, 3, auxiliary=False, genotype="PDARTS")


def test_a_pdarts_stage_network_has_the_depth_of_its_stage(make_config) -> None:
    assert stage_layers({"stage": 2, "layers": [5, 11, 17]}) == 11
    assert stage_layers({"stage": 4, "layers": [5, 11, 17]}) == 3  # the module names the bad stage (test_pdarts)
    for stage, cells in ((1, 5), (3, 17)):
        cfg = make_config("experiment=pdarts_stage_cifar10", f"model.progressive.stage={stage}")
        assert cfg.model.net.layers == cells
    cfg = make_config("experiment=pdarts_stage_digits", "model.net.init_channels=4", "model.net.layers=8")
    with pytest.raises(ConfigError, match=r"^model.progressive: stage 1 has 3 cells .* the search network has 8"):
        build(cfg.model, "model")
