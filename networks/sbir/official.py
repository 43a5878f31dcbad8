"""SAKE's official files read into the suite's networks (arXiv:1904.03208; qliu24/SAKE).

Two files matter, each with one converter (``visionsuite.official_weights`` does the reading, the unwrapping of
``{'state_dict': ...}`` and ``module.``, and the strict per-key check):

* the ImageNet SE-ResNet-50 SAKE starts from, Cadene's ``pretrainedmodels`` ``se_resnet50-ce0d4300.pth``
  (``src/senet.py`` ``pretrained_settings['se_resnet50']``): :func:`convert_se_resnet_key` makes each SE 1x1
  convolution a linear layer (``fc1`` squeezed; ``fc2`` squeezed and given a zero column for the domain tag), as the
  official ``initialize_pretrained_model_ext`` / ``_hashing`` do; every other key keeps its name. The same
  converter reads a CSE-ResNet-50 state dict in the official names (linear SE layers with the tag column): those
  keys pass unchanged. The networks' ``weights_path`` takes either (:func:`load_se_resnet_weights`).
* SAKE's own training checkpoint ``model_best.pth.tar`` (``{'epoch', 'arch', 'state_dict', 'best_acc1',
  'optimizer'}``, ``module.`` on every key: the student ``CSEResnetModel_KDHashing`` of ``src/ResnetModel.py``):
  :data:`convert_sake_student_key` renames ``original_model.*`` (the CSE-ResNet-50 and its two hashing layers) and
  ``linear.*`` (the seen-class classifier) to the suite's student, ``net.*`` and ``heads.*``
  (``lightning_modules.sake.SakeModule.official_format``, used by ``ckpt_path=model_best.pth.tar``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from visionsuite.official_weights import (
    OfficialWeightsError,
    load_converted,
    read_official_weights,
    rename_by_prefix,
)

SE_RESNET50_FILE = "se_resnet50-ce0d4300.pth"
SE_RESNET50_URL = f"http://data.lip6.fr/cadene/pretrainedmodels/{SE_RESNET50_FILE}"
SE_RESNET50_DESCRIPTION = (f"ImageNet SE-ResNet-50 or CSE-ResNet-50 (Cadene pretrainedmodels se_resnet50, "
                           f"{SE_RESNET50_FILE}; or qliu24/SAKE src/senet.py cse_resnet50)")
SAKE_STUDENT_DESCRIPTION = ("SAKE student (qliu24/SAKE src/ResnetModel.py CSEResnetModel_KDHashing, the "
                            "model_best.pth.tar of its training scripts)")


def convert_se_resnet_key(name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
    """Cadene ``se_resnet50`` (or official ``cse_resnet50``) key -> :class:`~networks.sbir.cse_resnet.CSEResNet` key.

    An SE FC stored as a 1x1 convolution (Cadene's file) becomes a linear weight; ``fc2`` also gets the zero column
    of the domain tag, so the converted network computes the SE-ResNet-50's function for either tag.
    """
    if name.endswith("se_module.fc1.weight") and tensor.dim() == 4:
        return name, tensor.flatten(1)
    if name.endswith("se_module.fc2.weight") and tensor.dim() == 4:
        weight = tensor.flatten(1)
        return name, torch.cat([weight, weight.new_zeros(weight.shape[0], 1)], dim=1)
    return name, tensor


#: ``model_best.pth.tar`` key (``module.`` removed) -> the suite's student (``SakeStudent``: ``net`` + ``heads``).
convert_sake_student_key = rename_by_prefix({
    "original_model.second_last_linear.": "heads.embedding.",  # 2048 -> d, the retrieval feature
    "original_model.last_linear.": "heads.distillation.",       # d -> 1000, the distilled ImageNet head
    "original_model.": "net.",                                  # the CSE-ResNet-50 (official names)
    "linear.": "heads.classifier.",                             # d -> seen classes
})


def load_se_resnet_weights(network: nn.Module, weights_path: str | Path) -> None:
    """Load Cadene's ``se_resnet50-ce0d4300.pth`` as downloaded (or a CSE-ResNet state dict in the official names)
    into ``network`` (strict: one error names the first key that does not fit)."""
    path = Path(weights_path)
    if not path.is_file():
        raise OfficialWeightsError(f"weights_path={path}: no such file. Download {SE_RESNET50_URL} (the official "
                                   "code's ImageNet SE-ResNet-50) on a machine with internet and give its local path; "
                                   "nothing is downloaded at run time.")
    load_converted(network, read_official_weights(path), convert_se_resnet_key, source=path,
                   description=SE_RESNET50_DESCRIPTION)


__all__ = ["SAKE_STUDENT_DESCRIPTION", "SE_RESNET50_DESCRIPTION", "SE_RESNET50_URL", "convert_sake_student_key",
           "convert_se_resnet_key", "load_se_resnet_weights"]
