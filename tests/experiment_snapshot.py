"""Every experiment's resolved config as flat ``{dotted key: value}``: what a refactor of ``conf/`` must keep.

``python -m tests.experiment_snapshot`` writes ``tests/fixtures/experiment_configs.json``; the test
``tests/test_experiment_snapshot.py`` composes every experiment again and compares, key by key, apart from keys it
names as deliberately moved or changed. Paths are composed as ``/DATA`` and ``/RUN`` so the snapshot does not
depend on the machine; a value that cannot be resolved outside a running job is kept as its interpolation text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

import visionsuite.resolvers  # noqa: F401  (the configs use the suite's resolvers)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "conf"
SNAPSHOT = Path(__file__).resolve().parent / "fixtures" / "experiment_configs.json"
FIXED_PATHS = ["paths.data_dir=/DATA", "paths.log_dir=/LOGS", "paths.output_dir=/RUN"]


def experiment_names() -> list[str]:
    """Every experiment a user can name: ``conf/experiment/<name>.yaml`` (sub-folders hold shared templates)."""
    return sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml"))


def composed(experiment: str) -> DictConfig:
    """The run config of ``experiment`` with fixed paths, its Hydra node removed."""
    GlobalHydra.instance().clear()
    initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3")
    cfg = compose(config_name="run", overrides=[f"experiment={experiment}", *FIXED_PATHS], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "/RUN"
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def flat_values(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted key: resolved value}`` for every leaf of ``node`` (lists are leaves)."""
    values: dict[str, Any] = {}
    if isinstance(node, DictConfig):
        for key in node.keys():
            full = f"{prefix}{key}"
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                values.update(flat_values(child, f"{full}."))
                if len(child) == 0:
                    values[full] = {}
            else:
                values[full] = _leaf(node, key)
    return values


def _leaf(parent: DictConfig, key: str) -> Any:
    try:
        value = parent[key]
    except Exception:  # noqa: BLE001 (an interpolation that only a running job resolves)
        return str(parent._get_node(key)._value())
    if isinstance(value, ListConfig | DictConfig):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except Exception:  # noqa: BLE001
            return OmegaConf.to_container(value, resolve=False)
    return value


def snapshot() -> dict[str, dict[str, Any]]:
    """Every experiment's flat resolved config."""
    try:
        return {name: flat_values(composed(name)) for name in experiment_names()}
    finally:
        GlobalHydra.instance().clear()


def main() -> int:
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(json.dumps(snapshot(), indent=1, sort_keys=True, default=str) + "\n")
    print(f"wrote {SNAPSHOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
