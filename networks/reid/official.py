"""The official re-ID model of MCNL (FlyHighest/Single-Camera-Training-ReID) in the suite's names.

The official MCNL and triplet trainings (main_reid.py with ``--model_name distance`` / ``triplet``) build
``BaseNetBuilder(num_classes=None, last_stride=1)`` (models/baseline_model.py): a torchvision-layout ResNet-50 under
``base.`` (models/utils/resnet.py: stride in the bottleneck's 3x3 convolution, no ``fc``), global average pooling,
the 2048-d pooled vector as the feature; no bottleneck or classifier. That is
:class:`networks.reid.embedding.ReIDEmbedding` on :func:`~networks.reid.embedding.resnet50_trunk` with
``last_stride=1``, whose trunk holds the same modules by position (:data:`RESNET50_TRUNK_LAYERS`).

What the official training saves (utils/serialization.py ``save_checkpoint``, called from main_reid.py at every
``eval_step`` epoch and the last):
``torch.save({'state_dict': ..., 'epoch': N}, '<save_dir>/N_checkpoint_epN.pth.tar')``.
With ``--num_gpu 2`` (train.sh) the state dict is ``model.module.state_dict()``: keys ``base.conv1.weight`` ...
``base.layer4.2.bn3.num_batches_tracked``; with one GPU it is the ``nn.DataParallel`` wrapper's, every key prefixed
``module.``. :func:`visionsuite.official_weights.read_official_weights` unwraps both; :data:`convert_official_key`
renames ``base.<layer>.`` to ``trunk.<index>.``. The official softmax baseline (``--model_name softmax``) adds
``bottleneck.`` and ``classifier.`` layers and is not this network; the official test script drops those keys and
loads with ``strict=False``, which the suite does not do: a file that does not fill the network exactly is refused
(the training module, ``lightning_modules.reid``, adds advice for the usual mix-ups).
"""

from __future__ import annotations

import torch

from networks.reid.embedding import RESNET50_TRUNK_LAYERS
from visionsuite.official_weights import rename_by_prefix

#: Official key prefix -> suite key prefix (``base.layer1.`` -> ``trunk.4.``); layers without weights never occur.
OFFICIAL_PREFIXES = {f"base.{name}.": f"trunk.{index}." for index, name in enumerate(RESNET50_TRUNK_LAYERS)}


class OfficialReIDKeys:
    """The converter ``(official key, tensor) -> (suite key, tensor)`` (``None`` for a key of another network). The
    training module adds the advice for the files people mistake for an official MCNL checkpoint
    (``advise``, see ``visionsuite.official_weights``)."""

    def __init__(self) -> None:
        self._rename = rename_by_prefix(OFFICIAL_PREFIXES)

    def __call__(self, name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        return self._rename(name, tensor)


#: The official converter (see :class:`OfficialReIDKeys`).
convert_official_key = OfficialReIDKeys()

DESCRIPTION = ("MCNL / triplet re-ID model of FlyHighest/Single-Camera-Training-ReID (models/baseline_model.py "
               "BaseNetBuilder: `base.` + ResNet-50, last stride 1, no classifier)")


__all__ = ["DESCRIPTION", "OFFICIAL_PREFIXES", "OfficialReIDKeys", "convert_official_key"]
