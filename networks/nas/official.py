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
DARTS's and PC-DARTS's omit: the network's ``auxiliary_batchnorm`` option.
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
# SepConv's official Sequential holds two ReLU-dw-pw-BN blocks, the second from index 4.
_SEP_CONV_HALF = 4


def official_description(network: nn.Module) -> str:
    """What an official file for ``network`` is, for messages: e.g. ``DARTS-family NetworkImageNet (...)``."""
    return f"DARTS-family evaluation network {type(network).__name__} ({OFFICIAL_SOURCES})"


class OfficialKeyConverter:
    """Official key -> key of ``network`` (a :class:`NetworkCIFAR` or :class:`NetworkImageNet`), see the module
    docstring; keys outside the cells keep their names (one the network lacks is reported by the strict conversion).
    The training module adds the advice that names its config keys (``visionsuite.official_weights``)."""

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
