"""A pruned structure as plain data (``structure.json``): per-layer widths, kept channels, cost and target.

Pruning from Scratch (arXiv:1909.12579) exports its result as a channel list (the official ``pruned_cfg``);
we add what makes the file self-describing: the backbone, the widths it was cut from, the kept channel
indices (the baseline fine-tunes from them), and the parameters / multiply-adds of the pruned network next to
those of the unexpanded reference, with the target and achieved reduction. :func:`load_structure` also reads the
official list itself (``pruned_cfg-<p>.pkl``, :mod:`networks.pruning.official`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from networks.classification import build_backbone
from visionsuite.errors import ConfigError
from visionsuite.io import atomic_write_json, is_unset

log = logging.getLogger(__name__)

STRUCTURE_FILE = "structure.json"


@dataclass
class Structure:
    """A pruned network (see the module docstring).

    Attributes:
        backbone: zoo name of the family.
        num_classes: classes of the classifier.
        input_size: image side the multiply-adds are counted at.
        width_multiplier: width of the network that was pruned (the expansion; the pruned network keeps it
            for its unpruned widths, e.g. the CIFAR ResNet residual stream).
        reference_width_multiplier: width of the unexpanded network the reduction is measured against.
        layers: channel-group names (gate paths), one per entry of ``channels``.
        full_channels: widths of the network that was pruned.
        channels: kept widths.
        kept: kept channel indices of each layer (into ``full_channels``).
        criterion: ``gates`` (Pruning from Scratch), ``bn_scale`` or ``filter_l1`` (baseline).
        target: requested multiply-add reduction relative to the reference.
        achieved: achieved reduction.
        params / madds: of the pruned network; reference_params / reference_madds: of the reference.
        iterations: bisection steps taken.
    """

    backbone: str
    num_classes: int
    input_size: int
    width_multiplier: float
    reference_width_multiplier: float
    layers: list[str]
    full_channels: list[int]
    channels: list[int]
    kept: list[list[int]]
    criterion: str
    target: float
    achieved: float
    params: int
    madds: int
    reference_params: int
    reference_madds: int
    iterations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the structure as JSON (atomically)."""
        return atomic_write_json(Path(path), asdict(self))

    def table(self) -> str:
        """The per-layer table printed after pruning (reference / pruned-from / kept widths)."""
        from networks.pruning.families import prunable_family

        reference = prunable_family(self.backbone).default_channels(self.reference_width_multiplier)
        rows = [f"{'layer':<28} {'reference':>9} {'expanded':>9} {'kept':>6} {'kept %':>7}"]
        for name, ref, full, kept in zip(self.layers, reference, self.full_channels, self.channels, strict=True):
            rows.append(f"{name:<28} {ref:>9d} {full:>9d} {kept:>6d} {100.0 * kept / full:>6.1f}%")
        rows.append(f"multiply-adds {self.madds / 1e6:.2f}M vs reference {self.reference_madds / 1e6:.2f}M: "
                    f"reduction {self.achieved:.4f} (target {self.target}); parameters {self.params / 1e6:.4f}M vs "
                    f"{self.reference_params / 1e6:.4f}M; criterion {self.criterion}")
        return "\n".join(rows)


def load_structure(path: str | Path, **official: Any) -> Structure:
    """Read ``structure.json``, or an official per-layer channel list (``pruned_cfg-<p>.pkl``; ``official``:
    the keyword arguments of :func:`networks.pruning.official.official_structure`: backbone, num_classes,
    input_size, expansion).

    Raises:
        ConfigError: naming the file, when it is missing or malformed.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: no such file. Give the structure.json written by a prune phase "
                          "(python run.py experiment=pfs_<backbone>_prune ...) or an official per-layer channel "
                          "list (pruned_cfg-<p>.pkl of script/prune_model.py).")
    from networks.pruning.official import is_official_cfg, official_structure

    if is_official_cfg(file):
        return official_structure(file, **official)
    try:
        data = json.loads(file.read_text())
        structure = Structure(**data)
    except (json.JSONDecodeError, TypeError) as error:
        raise ConfigError(f"{file}: not a structure.json of this suite ({error}).") from None
    lengths = {len(structure.layers), len(structure.channels), len(structure.full_channels)}
    if len(lengths) != 1:
        raise ConfigError(f"{file}: layers, channels and full_channels differ in length ({sorted(lengths)}).")
    for name, width, full in zip(structure.layers, structure.channels, structure.full_channels, strict=True):
        if width < 1:
            raise ConfigError(f"{file}: layer {name} keeps {width} channels; a structure that removes every "
                              "channel of a layer cannot be built (keep at least one).")
        if width > full:
            raise ConfigError(f"{file}: layer {name} keeps {width} of {full} channels.")
    return structure


def check_matches(structure: Structure, backbone: str, layer_names: list[str], source: str) -> None:
    """Refuse a structure of another backbone; name the first layer that does not match.

    Raises:
        ConfigError: naming ``source`` (the file the structure was read from).
    """
    if structure.backbone != backbone:
        raise ConfigError(f"{source}: the structure is for backbone {structure.backbone}, but the network to build is "
                          f"{backbone}; build {structure.backbone} (and its data) or give a structure of {backbone}.")
    for index in range(max(len(layer_names), len(structure.layers))):
        ours = layer_names[index] if index < len(layer_names) else "<none>"
        theirs = structure.layers[index] if index < len(structure.layers) else "<none>"
        if ours != theirs:
            raise ConfigError(f"{source}: layer {index} of the structure is {theirs} but {backbone} has {ours} there; "
                              f"the structure does not match the backbone (first mismatching layer: {theirs}).")


def pruned_network(name: str, num_classes: int, *, structure: str | Path | None = None,
                   official_expansion: int | None = None, input_size: int = 32, width_multiplier: float = 1.0,
                   **options: Any) -> nn.Module:
    """The zoo's prunable backbone ``name`` at the widths of a pruned ``structure`` (the retraining of Pruning from
    Scratch, the baseline's fine-tuning), or its full network at ``width_multiplier`` when ``structure`` is ``None``.

    Args:
        name: a prunable backbone of the zoo (:data:`networks.pruning.families.FAMILIES`).
        num_classes: outputs of the classifier.
        structure: a ``structure.json`` of ``name`` or an official per-layer channel list (``pruned_cfg-<p>.pkl``);
            the network takes its widths and the width it was cut from.
        official_expansion: the official ``-e`` an official list was pruned at (the CIFAR ResNet's residual width);
            ``None``: from the list's folder ``channel-<e>-...``, else the official 80.
        input_size: the image side at which an official list's parameters and multiply-adds are recorded.
        width_multiplier: the width of the full network (ignored with a ``structure``, which records its own).
        **options: the backbone's other options (``conf/model/backbone/<name>.yaml``).

    Returns:
        The network, with ``structure`` (the :class:`Structure`, or ``None``) and ``structure_path`` attributes.

    Raises:
        ValueError: ``structure=<file>: ...``, the file is missing, malformed or of another network.
    """
    from networks.pruning.cost import meta_network
    from networks.pruning.families import prunable_family

    family = prunable_family(name)
    loaded: Structure | None = None
    if not is_unset(structure):
        try:
            loaded = load_structure(structure, backbone=name, num_classes=int(num_classes),
                                    input_size=int(input_size), expansion=official_expansion)
            layers = [group.gate for group in family.groups_of(
                meta_network(family.build, num_classes, width_multiplier=loaded.width_multiplier))]
            check_matches(loaded, name, layers, str(structure))
        except ConfigError as error:  # its message starts with the file
            raise ValueError(f"structure={error}") from None
        width_multiplier = loaded.width_multiplier
        options["channels"] = loaded.channels
    network = build_backbone(name, num_classes, width_multiplier=width_multiplier, **options)
    network.structure = loaded
    network.structure_path = None if loaded is None else str(structure)
    return network


def budget_epochs(epochs: int, structure_path: str | None, budget_training: bool) -> int:
    """Scratch-B epochs (official ``--budget_train``): ``int(epochs / (1 - p))`` for the structure's target p."""
    if not budget_training or is_unset(structure_path):
        return int(epochs)
    if not Path(structure_path).is_file():
        return int(epochs)  # building the network reports the missing file (pruned_network)
    from networks.pruning.official import official_target

    target = official_target(structure_path)  # p of an official pruned_cfg-<p>.pkl, as script/train_pruned.py
    if target is None:
        structure = load_structure(structure_path)
        target = structure.target
        if structure.extra.get("target_from") == "measured":
            log.warning("%s: Scratch-B epochs from the list's measured reduction %.4f (script/train_pruned.py uses "
                        "its -p, the p of the file name pruned_cfg-<p>.pkl: name the file so, or give the epochs "
                        "without the budget).", structure_path, target)
    return int(1.0 / (1.0 - target) * int(epochs))


__all__ = ["STRUCTURE_FILE", "Structure", "budget_epochs", "check_matches", "load_structure", "pruned_network"]
