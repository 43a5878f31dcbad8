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
loads with ``strict=False``, which the suite does not do: a file that does not fill the network exactly is refused,
with advice for the usual mix-ups.
"""

from __future__ import annotations

import torch
from torch import nn

from networks.reid.embedding import RESNET50_TRUNK_LAYERS
from visionsuite.official_weights import OfficialFormat, rename_by_prefix

#: Official key prefix -> suite key prefix (``base.layer1.`` -> ``trunk.4.``); layers without weights never occur.
OFFICIAL_PREFIXES = {f"base.{name}.": f"trunk.{index}." for index, name in enumerate(RESNET50_TRUNK_LAYERS)}


class OfficialReIDKeys:
    """The converter ``(official key, tensor) -> (suite key, tensor)`` (``None`` for a key of another network),
    with :meth:`advise` for the files people mistake for an official MCNL checkpoint."""

    def __init__(self) -> None:
        self._rename = rename_by_prefix(OFFICIAL_PREFIXES)

    def __call__(self, name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        return self._rename(name, tensor)

    def advise(self, key: str) -> str | None:
        """What to do about ``key``, the first official key without a place (or network entry left empty)."""
        if key.startswith(("bottleneck.", "classifier.")):
            return ("The file has the official softmax baseline's bottleneck / classifier (main_reid.py "
                    "--model_name softmax); only the MCNL and triplet models (--model_name distance / triplet, "
                    "no classifier) are this network.")
        if key.startswith(("conv1.", "bn1.", "layer1.", "fc.")):
            return ("The file is in torchvision's ResNet-50 names (an ImageNet file such as resnet50-19c8e357.pth?): "
                    "start training from it with model.net.trunk.weights_path=<file>; ckpt_path= takes a model "
                    "trained by the official code (`base.` keys).")
        if key.startswith("base.layer"):
            return ("The official model is a ResNet-50: evaluate it with a ResNet-50 experiment (model=mcnl_resnet50, "
                    "e.g. experiment=mcnl_market_sct or triplet_market_sct), not the demo's reduced network.")
        return None


#: The official converter (see :class:`OfficialReIDKeys`).
convert_official_key = OfficialReIDKeys()

DESCRIPTION = ("MCNL / triplet re-ID model of FlyHighest/Single-Camera-Training-ReID (models/baseline_model.py "
               "BaseNetBuilder: `base.` + ResNet-50, last stride 1, no classifier)")


def official_reid_format(network: nn.Module) -> OfficialFormat:
    """How an official checkpoint loads into ``network`` (a :class:`~networks.reid.embedding.ReIDEmbedding`)."""
    return OfficialFormat(network=network, convert_key=convert_official_key, description=DESCRIPTION)


__all__ = ["DESCRIPTION", "OFFICIAL_PREFIXES", "OfficialReIDKeys", "convert_official_key", "official_reid_format"]
