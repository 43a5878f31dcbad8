"""An image classifier at a pruned structure (Pruning from Scratch, arXiv:1909.12579, Sec. 3.4 and 4).

The suite's :class:`~lightning_modules.image_classifier.ImageClassifier` with its network built from a
``structure.json`` (``model.structure``; ``None`` builds the family's default network at
``model.backbone.options.width_multiplier``):

* retraining of Pruning from Scratch: the pruned network from a fresh random initialisation;
* the conventional baseline: the full network trained, pruned by a trained-weight criterion (``mode=test`` with
  ``model.prune.criterion=bn_scale|filter_l1``), then fine-tuned from its kept channels
  (``model.init_kept_from=<the full network's checkpoint>``).
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
from networks.pruning.pruner import PruneSettings
from networks.pruning.structure import Structure, check_matches, load_structure
from networks.pruning.surgery import copy_kept_channels
from visionsuite.errors import ConfigError


def _unset(value: Any) -> bool:
    return value in (None, "", "None", "null")


class PrunedClassifier(ImageClassifier):
    """A classifier whose network is a prunable family at the widths of ``structure`` (module docstring).

    Args:
        backbone: ``{name, options: {width_multiplier}}`` of a prunable family.
        num_classes: classes of the dataset.
        structure: a ``structure.json`` (its backbone must be ``backbone.name``); ``None``: the full network.
        init_kept_from: a checkpoint of the full network (this module, ``structure=None``) whose kept channels
            initialise the pruned network (the baseline's fine-tuning); ``None``: random initialisation.
        prune: ``model.prune`` settings used when this network is pruned (``mode=test``, the baseline).
        decay_exempt: no weight decay on depthwise convs, BN and biases (the official ImageNet retraining).
        **kwargs: the remaining :class:`ImageClassifier` arguments (optimizer, scheduler, label smoothing...).
    """

    def __init__(self, backbone: Mapping[str, Any], num_classes: int, structure: str | None = None,
                 init_kept_from: str | None = None, prune: Mapping[str, Any] | None = None,
                 decay_exempt: bool = False, **kwargs: Any) -> None:
        name, options = backbone_spec(backbone)
        family = prunable_family(name)
        loaded: Structure | None = None if _unset(structure) else load_structure(str(structure))
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

    def copy_kept_from(self, path: str) -> None:
        """Initialise the pruned network with the kept channels of a full-network checkpoint (the baseline)."""
        if self.structure is None:
            raise ConfigError("model.init_kept_from needs model.structure (which channels to keep).")
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
