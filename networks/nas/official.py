"""The authors' released evaluation networks (DARTS, PC-DARTS, P-DARTS) in the suite's layout.

The three official repositories share one ``model.py`` (quark0/darts ``cnn/model.py``; yuhuixu1993/PC-DARTS and
chenxin061/pdarts ``model.py`` are copies of it) and so one state-dict layout, which computes the same function as
:class:`~networks.nas.networks.NetworkCIFAR` / :class:`~networks.nas.networks.NetworkImageNet` under other names:

=====================================================  ============================================================
official                                               suite
=====================================================  ============================================================
``cells.i.preprocessP.op.{1,2}`` (ReLUConvBN)          ``cells.i.preprocessP.{1,2}``
``cells.i._ops.k.op.{1,2,3,5,6,7}`` (SepConv: one      ``cells.i.ops.k.{0,1}.{1,2,3}`` (two DilConv halves)
Sequential of ReLU, dw, pw, BN, ReLU, dw, pw, BN)
``cells.i._ops.k.op.{1,2,3}`` (DilConv)                ``cells.i.ops.k.{1,2,3}``
``cells.i._ops.k.{conv_1,conv_2,bn}`` (skip_connect    ``cells.i.ops.k.{conv_1,conv_2,bn}``
at stride 2: FactorizedReduce)
``stem``, ``stem0``, ``stem1``, ``cells.i.preprocess0.{conv_1,conv_2,bn}``, ``auxiliary_head``, ``classifier``: same
=====================================================  ============================================================

A ``_ops.k.op.j`` key names a SepConv or a DilConv parameter depending on the operation at edge ``k`` of the cell,
which only the genotype says, so the converter is built for one network (:class:`OfficialKeyConverter`). P-DARTS's
ImageNet auxiliary head has a ``BatchNorm2d(768)`` after its 2x2 convolution (``auxiliary_head.features.6``), which
DARTS's and PC-DARTS's omit: the network's ``auxiliary_batchnorm`` option (``model.auxiliary_batchnorm``).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .networks import NetworkCIFAR, NetworkImageNet
from .operations import SepConv

__all__ = ["OFFICIAL_SOURCES", "OfficialKeyConverter", "official_description"]

#: The official files this layout covers.
OFFICIAL_SOURCES = "quark0/darts cnn/model.py; yuhuixu1993/PC-DARTS and chenxin061/pdarts model.py"

_PREPROCESS = re.compile(r"^(cells\.\d+\.preprocess[01])\.op\.(\d+\..+)$")
_OP_SEQUENCE = re.compile(r"^(cells\.\d+)\._ops\.(\d+)\.op\.(\d+)\.(.+)$")
_OP_MODULE = re.compile(r"^(cells\.\d+)\._ops\.(\d+)\.(.+)$")
_AUXILIARY_BATCHNORM = "auxiliary_head.features.6."
# SepConv's official Sequential holds two ReLU-dw-pw-BN blocks, the second from index 4.
_SEP_CONV_HALF = 4


def official_description(network: nn.Module) -> str:
    """What an official file for ``network`` is, for messages: e.g. ``DARTS-family NetworkImageNet (...)``."""
    return f"DARTS-family evaluation network {type(network).__name__} ({OFFICIAL_SOURCES})"


class OfficialKeyConverter:
    """Official key -> key of ``network`` (a :class:`NetworkCIFAR` or :class:`NetworkImageNet`), see the module
    docstring; keys outside the cells keep their names (one the network lacks is reported by the strict conversion).
    :meth:`advise` says which option fits a file whose keys and the network's differ in a known way (another network
    kind, another genotype, an auxiliary head or its BatchNorm on one side only, a suite checkpoint)."""

    def __init__(self, network: NetworkCIFAR | NetworkImageNet) -> None:
        self.network = network
        self._sep_convs = {name for name, module in network.named_modules() if isinstance(module, SepConv)}

    def __call__(self, key: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        match = _PREPROCESS.match(key)
        if match:
            return f"{match[1]}.{match[2]}", tensor
        match = _OP_SEQUENCE.match(key)
        if match:
            op, index = f"{match[1]}.ops.{match[2]}", int(match[3])
            if op in self._sep_convs:
                return f"{op}.{index // _SEP_CONV_HALF}.{index % _SEP_CONV_HALF}.{match[4]}", tensor
            return f"{op}.{index}.{match[4]}", tensor
        match = _OP_MODULE.match(key)
        if match:
            return f"{match[1]}.ops.{match[2]}.{match[3]}", tensor
        return key, tensor

    def advise(self, key: str) -> str | None:
        """How to fix a conversion whose first unmatched key (an official key without a place, or a network entry
        left empty) is ``key``; ``None`` when the layouts differ in no known way."""
        network, head = self.network, self.network.auxiliary_head
        network_side = key in network.state_dict()
        if key.startswith("net."):
            return ("The file is a checkpoint of this suite (its weights are under `net.`), not an official one: give "
                    "it with ckpt_format=auto (the default) or ckpt_format=lightning.")
        if isinstance(network, NetworkImageNet) and key.startswith("stem."):
            return "The file holds the CIFAR network (a `stem.` key): use experiment=nas_train_cifar10 (or cifar100)."
        if isinstance(network, NetworkCIFAR) and key.startswith(("stem0.", "stem1.")):
            return "The file holds the ImageNet network (a `stem0.` key): use experiment=nas_train_imagenet."
        if key.startswith(_AUXILIARY_BATCHNORM) and isinstance(network, NetworkImageNet) and head is not None:
            if network_side:
                return ("The file's ImageNet auxiliary head has no BatchNorm2d(768) after its 2x2 convolution (DARTS's "
                        "and PC-DARTS's model.py): set model.auxiliary_batchnorm=false.")
            return (f"`{key}` belongs to the BatchNorm2d(768) of P-DARTS's ImageNet auxiliary head (chenxin061/pdarts "
                    "model.py), which this network does not have: set model.auxiliary_batchnorm=true.")
        if key.startswith("auxiliary_head."):
            if head is None:
                return ("The file has an auxiliary head and this network none: set model.auxiliary_weight=0.4 (the "
                        "head is built; evaluation does not use it).")
            if network_side:
                return "The file has no auxiliary head: set model.auxiliary_weight=0."
        if key.startswith("cells."):
            return ("The file's cells hold other operations or another number of cells: check model.genotype (the "
                    "file's architecture) and model.layers.")
        return None
