"""An image classifier at a pruned structure (Pruning from Scratch, arXiv:1909.12579, Sec. 3.4 and 4).

The suite's :class:`~lightning_modules.image_classifier.ImageClassifier` with its network built from a
``structure.json`` (``model.structure``; ``None`` builds the family's default network at
``model.backbone.options.width_multiplier``):

* retraining of Pruning from Scratch: the pruned network from a fresh random initialisation;
* the conventional baseline: the full network trained, pruned by a trained-weight criterion (``mode=test`` with
  ``model.prune.criterion=bn_scale|filter_l1``), then fine-tuned from its kept channels
  (``model.init_kept_from=<the full network's checkpoint>``).

``model.structure`` may also be the official per-layer channel list (``pruned_cfg-<p>.pkl`` of the official
script/prune_model.py; the ResNet residual width from ``model.official_expansion``, see
:mod:`networks.pruning.official`), and ``ckpt_path=`` an official checkpoint of the CIFAR ResNets or VGG-16-BN
(script/train_pruned.py's ``best_checkpoint.pth``, full or pruned): :meth:`PrunedClassifier.official_format`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.gate_learning import backbone_spec
from lightning_modules.image_classifier import ImageClassifier
from networks.pruning.families import prunable_family
from networks.pruning.official import CRITERION as OFFICIAL_CFG
from networks.pruning.official import official_network
from networks.pruning.pruner import PruneSettings
from networks.pruning.structure import Structure, check_matches, load_structure
from networks.pruning.surgery import copy_kept_channels
from visionsuite.errors import ConfigError
from visionsuite.official_weights import OfficialFormat


def _unset(value: Any) -> bool:
    return value in (None, "", "None", "null")


class PrunedClassifier(ImageClassifier):
    """A classifier whose network is a prunable family at the widths of ``structure`` (module docstring).

    Args:
        backbone: ``{name, options: {width_multiplier}}`` of a prunable family.
        num_classes: classes of the dataset.
        structure: a ``structure.json`` (its backbone must be ``backbone.name``) or an official per-layer channel
            list (``pruned_cfg-<p>.pkl``); ``None``: the full network.
        official_expansion: the official ``-e`` an official list was pruned at (the CIFAR ResNet's residual
            width, e.g. 80); ``None``: from the list's folder name ``channel-<e>-...``, else the official 80.
        init_kept_from: a checkpoint of the full network (this module, ``structure=None``) whose kept channels
            initialise the pruned network (the baseline's fine-tuning); ``None``: random initialisation.
        prune: ``model.prune`` settings used when this network is pruned (``mode=test``, the baseline).
        decay_exempt: no weight decay on depthwise convs, BN and biases (the official ImageNet retraining).
        **kwargs: the remaining :class:`ImageClassifier` arguments (optimizer, scheduler, label smoothing...).
    """

    def __init__(self, backbone: Mapping[str, Any], num_classes: int, structure: str | None = None,
                 official_expansion: int | None = None, init_kept_from: str | None = None,
                 prune: Mapping[str, Any] | None = None, decay_exempt: bool = False, **kwargs: Any) -> None:
        name, options = backbone_spec(backbone)
        family = prunable_family(name)
        loaded: Structure | None = None
        if not _unset(structure):
            loaded = load_structure(str(structure), backbone=name, num_classes=int(num_classes),
                                    input_size=int(kwargs.get("input_size", 32)), expansion=official_expansion)
        width_multiplier = float(options.get("width_multiplier", 1.0))
        if loaded is not None:
            layers = [group.gate for group in family.groups_of(
                family.build(num_classes, width_multiplier=loaded.width_multiplier))]
            check_matches(loaded, name, layers)
            width_multiplier = loaded.width_multiplier
        # The parent builds the zoo's network by name; it is replaced below by the family at the structure.
        super().__init__(backbone={"name": name, "options": {}}, num_classes=num_classes, **kwargs)
        self.family = family
        self.structure = loaded
        self.width_multiplier = width_multiplier
        self.prune_settings = PruneSettings.from_config(prune)
        self.hparams["backbone"] = {"name": name, "options": {"width_multiplier": width_multiplier}}
        self.hparams["structure_channels"] = None if loaded is None else list(loaded.channels)
        self.structure_path = None if loaded is None else str(structure)
        if loaded is not None and loaded.criterion == OFFICIAL_CFG:
            self.summary_notes["structure"] = (
                f"official per-layer list {structure} (reduction {loaded.achieved:.4f}); residual width "
                f"{loaded.extra['official_expansion']} from {loaded.extra['expansion_from']}")
        self.hparams["prune"] = dict(prune or {})
        self.net: nn.Module = family.build(num_classes, channels=None if loaded is None else loaded.channels,
                                           width_multiplier=width_multiplier)
        self.groups = family.groups_of(self.net)
        self.decay_exempt = bool(decay_exempt)
        if not _unset(init_kept_from):
            self.copy_kept_from(str(init_kept_from))

    def optimizer_parameters(self) -> list[dict[str, Any]] | Any:
        """All parameters; with ``decay_exempt`` the depthwise convs, BN and biases in a group without decay."""
        if not self.decay_exempt:
            return self.parameters()
        exempt: list[nn.Parameter] = []
        for module in self.modules():
            depthwise = isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
            for name, parameter in module.named_parameters(recurse=False):
                if depthwise or isinstance(module, nn.modules.batchnorm._BatchNorm) or name == "bias":
                    exempt.append(parameter)
        exempt_ids = {id(parameter) for parameter in exempt}
        decayed = [parameter for parameter in self.parameters() if id(parameter) not in exempt_ids]
        return [{"params": decayed}, {"params": exempt, "weight_decay": 0.0}]

    def official_format(self) -> OfficialFormat:
        """The official checkpoints of the CIFAR ResNets and VGG-16-BN (script/train_pruned.py's bare state dict,
        full or pruned), placed by the family's converter into this network at its widths."""
        network = official_network(self.family.name)
        if self.structure is None:
            widths = f"at width x{self.width_multiplier:g} (the full network; model.backbone.options.width_multiplier)"
        else:
            widths = f"at the per-layer widths of model.structure={self.structure_path}"
        if network.name.startswith("resnet"):
            residual = round(self.width_multiplier * network.base_width)
            how = (f" ({self.structure.extra['expansion_from']}; model.official_expansion sets it)"
                   if self.structure is not None and self.structure.criterion == OFFICIAL_CFG else "")
            widths += f", residual width {residual}{how}"
        return OfficialFormat(self.net, network.convert_key, f"{network.describe()} {widths}")

    def copy_kept_from(self, path: str) -> None:
        """Initialise the pruned network with the kept channels of a full-network checkpoint (the baseline)."""
        if self.structure is None:
            raise ConfigError("model.init_kept_from needs model.structure (which channels to keep).")
        if not self.structure.kept:
            raise ConfigError(f"model.init_kept_from needs the kept channel indices of a structure.json; "
                              f"model.structure={self.structure_path} gives widths only (an official channel list).")
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"model.init_kept_from={file}: no such checkpoint file.")
        checkpoint = torch.load(file, map_location="cpu", weights_only=False)
        state = {key[len("net."):]: value for key, value in checkpoint.get("state_dict", {}).items()
                 if key.startswith("net.")}
        source = self.family.build(self.hparams.num_classes, width_multiplier=self.structure.width_multiplier)
        try:
            source.load_state_dict(state)
        except RuntimeError as error:
            raise ConfigError(f"model.init_kept_from={file}: not a checkpoint of the full {self.family.name} at "
                              f"width {self.structure.width_multiplier} ({str(error).splitlines()[0]}).") from None
        copy_kept_channels(source, self.net, self.family.groups_of(source), self.structure.kept)


__all__ = ["PrunedClassifier"]
