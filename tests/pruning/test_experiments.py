"""Every pfs_* experiment composes, and so does every phase of every chain (with its overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.helpers import CONFIG_DIR

EXPERIMENTS = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("pfs_*.yaml"))
#: The chains: their file includes a chain template (conf/experiment/pfs/chain.yaml, pfs/baseline_chain.yaml).
CHAINS = [name for name in EXPERIMENTS
          if any(f"- pfs/{template}\n" in (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
                 for template in ("chain", "baseline_chain"))]


def test_the_paper_and_demo_chains_are_all_there() -> None:
    for name in ("pfs_vgg16_cifar10", "pfs_resnet56_cifar10", "pfs_resnet110_cifar10", "pfs_mobilenet_v2_imagenet",
                 "pfs_resnet50_imagenet", "pfs_digits", "pfs_baseline_digits", "pfs_baseline_resnet56_cifar10"):
        assert name in CHAINS, name


# Composing is ~1 s per phase: the default run takes one chain per dataset, the rest are `slow`.
DEFAULT_CHAINS = ("pfs_digits", "pfs_resnet56_cifar10")


@pytest.mark.parametrize("chain", [name if name in DEFAULT_CHAINS else pytest.param(name, marks=pytest.mark.slow)
                                   for name in CHAINS])
def test_every_phase_of_every_chain_composes(make_config, tmp_path: Path, chain: str) -> None:
    cfg = make_config(f"experiment={chain}")
    assert cfg.monitor and cfg.monitor_mode in ("max", "min")
    for name, spec in cfg.phases.items():
        overrides = [f"experiment={spec.experiment}", *(spec.get("overrides") or [])]
        for key in (spec.get("inputs") or {}):
            overrides.append(f"{key}={tmp_path / 'artifact'}")
        phase = make_config(*overrides, output_dir=tmp_path / name)
        assert phase.model._target_.startswith("lightning_modules.") and phase.model.net._target_, (chain, name)
        assert phase.model.net.name == cfg.model.net.name, (chain, name)  # the chain's network reaches every phase
        OmegaConf.to_container(phase.model, resolve=False)
        if "model.net.structure" not in (spec.get("inputs") or {}):
            OmegaConf.to_container(phase.trainer, resolve=True)  # budget epochs resolve without a structure
        if phase.model._target_.endswith("GateLearning"):
            assert phase.monitor == "val/gate_selection" and phase.test_after_fit is False


@pytest.mark.parametrize("chain,crop_scale_min", [("pfs_mobilenet_v2_imagenet", 0.25), ("pfs_resnet50_imagenet", 0.08)])
def test_imagenet_retraining_uses_the_official_augmentation(make_config, tmp_path: Path, chain: str,
                                                            crop_scale_min: float) -> None:
    spec = make_config(f"experiment={chain}").phases.retrain
    overrides = [f"experiment={spec.experiment}", *spec.overrides, f"model.net.structure={tmp_path / 'structure.json'}"]
    data = make_config(*overrides).data
    assert data.augment == "imagenet_lighting"
    assert data.augment_options.crop_scale_min == crop_scale_min
    assert data.augment_options.color_jitter == 0.4 and data.augment_options.lighting_std == 0.1


@pytest.mark.parametrize("chain", ["pfs_mobilenet_v2_imagenet", "pfs_resnet50_imagenet"])
def test_imagenet_gate_learning_has_the_official_augmentation_and_eval_interval(make_config, chain: str) -> None:
    """learn_gates_imagenet.py: RandomResizedCrop(224, scale=(0.25, 1)) and a flip, for every backbone; the kept
    gates are chosen among validations every 500 steps of the single pass."""
    spec = make_config(f"experiment={chain}").phases.learn
    learn = make_config(f"experiment={spec.experiment}", *spec.overrides)
    assert learn.data.augment == "standard" and learn.data.augment_options.crop_scale_min == 0.25
    assert learn.trainer.max_epochs == 1 and learn.trainer.val_check_interval == 500
    assert learn.data.val_per_class == 50 and not learn.data.get("val_fraction")  # official: last 50 per class
