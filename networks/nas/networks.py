"""Evaluation networks built from a genotype (training a found architecture from scratch).

The CIFAR and ImageNet (mobile setting) networks of DARTS (arXiv:1806.09055, Sec. 3.2-3.3 and
appendix A.2), reused unchanged by PC-DARTS (arXiv:1907.05737) and P-DARTS (arXiv:1904.12760):

* CIFAR: stem 3x3 conv to ``3C`` + BN; ``layers`` cells, reduction cells (channels doubled, H and W
  halved) at ``layers // 3`` and ``2 * layers // 3``; auxiliary head after cell ``2 * layers // 3``
  (8x8 features for 32x32 inputs); global average pooling; linear classifier. Paper setting: C=36,
  20 cells, drop-path 0.2 (DARTS) / 0.3 (PC-DARTS, P-DARTS), auxiliary weight 0.4.
* ImageNet: three stride-2 3x3 convs as stem (cells start at 28x28 for 224x224 inputs), C=48,
  14 cells, the first cell treats its input as coming from a reduction.

Drop-path (per-sample, not on identity ops) follows the official DARTS code; the training module sets the
network's ``drop_path_prob`` every epoch (linear ramp ``p * epoch / epochs``). Parameters are counted
without the auxiliary head, as the papers do (:func:`count_parameters_m`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .genotypes import Genotype, resolve_genotype
from .operations import OPS, FactorizedReduce, Identity, ReLUConvBN

__all__ = [
    "AuxiliaryHeadCIFAR",
    "AuxiliaryHeadImageNet",
    "GenotypeCell",
    "NetworkCIFAR",
    "NetworkImageNet",
    "count_parameters_m",
    "drop_path",
]

GenotypeSpec = Genotype | str | os.PathLike[str] | Mapping[str, Any]


def drop_path(x: torch.Tensor, drop_prob: float, training: bool = True) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and scale the rest by ``1 / (1 - drop_prob)``.

    The expectation is unchanged. Returns ``x`` itself when not ``training`` or ``drop_prob == 0``.
    """
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_prob={drop_prob}: a drop-path probability must be in [0, 1)")
    if not training or drop_prob == 0.0:
        return x
    keep_prob = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep_prob)
    return x * (mask / keep_prob)


class GenotypeCell(nn.Module):
    """One cell of an evaluation network: the edges of ``genotype.normal`` or ``genotype.reduce``.

    Args:
        genotype: the (validated) genotype.
        C_prev_prev: channels of state 0 (output of cell k-2).
        C_prev: channels of state 1 (output of cell k-1).
        C: channels of every node in this cell; the output has ``len(concat) * C`` channels.
        reduction: a reduction cell (edges from states 0 and 1 use stride 2).
        reduction_prev: the previous cell reduced, so state 0 is twice as large and is reduced by
            FactorizedReduce instead of the 1x1 ReLU-conv-BN.
    """

    def __init__(
        self,
        genotype: Genotype,
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=True)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=True)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat: tuple[int, ...] = genotype.reduce_concat if reduction else genotype.normal_concat
        self.num_nodes = len(edges) // 2
        self.multiplier = len(self.concat)
        self.inputs: tuple[int, ...] = tuple(index for _, index in edges)
        self.ops = nn.ModuleList(OPS[op](C, 2 if reduction and index < 2 else 1, True) for op, index in edges)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.num_nodes):
            node_sum = None
            for edge in (2 * node, 2 * node + 1):
                op = self.ops[edge]
                h = op(states[self.inputs[edge]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                node_sum = h if node_sum is None else node_sum + h
            states.append(node_sum)
        return torch.cat([states[index] for index in self.concat], dim=1)


def _check_head_output(features: torch.Tensor, head: str, expected: str) -> None:
    if features.shape[-2:] != (1, 1):
        raise ValueError(
            f"auxiliary=True: {head} expects {expected} input features but its convolutions produced "
            f"{tuple(features.shape[-2:])} maps; use the paper's input size or build the network with auxiliary=False"
        )


class AuxiliaryHeadCIFAR(nn.Module):
    """Auxiliary classifier on 8x8 features (after the second reduction of a 32x32 input).

    ReLU, AvgPool 5 stride 3 (no padding) -> 2x2, 1x1 conv 128, BN, ReLU, 2x2 conv 768, BN, ReLU, Linear
    (DARTS appendix A.2, following NASNet).
    """

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 5:
            raise ValueError(
                f"auxiliary=True: the CIFAR auxiliary head expects 8x8 features (32x32 inputs), got "
                f"{tuple(x.shape[-2:])}; build the network with auxiliary=False for inputs smaller than 29x29"
            )
        features = self.features(x)
        _check_head_output(features, "the CIFAR auxiliary head", "8x8 (32x32 images)")
        return self.classifier(features.flatten(1))


class AuxiliaryHeadImageNet(nn.Module):
    """Auxiliary classifier of the ImageNet network.

    ReLU, AvgPool 5 stride 2 (no padding), 1x1 conv 128, BN, ReLU, 2x2 conv 768, [BN,] ReLU, Linear. The official
    DARTS code (quark0/darts cnn/model.py, copied by PC-DARTS) has no BN after the 768-channel conv (it is commented
    out there); P-DARTS's model.py (chenxin061/pdarts) has one: ``batchnorm=True``. The official code comments
    "input size 14x14", but in :class:`NetworkImageNet` the head follows the second reduction cell, so a 224x224
    image gives it 7x7 features (-> 2x2 after pooling -> 1x1 after the 2x2 conv).

    Args:
        C: channels of the features it reads.
        num_classes: output classes.
        batchnorm: ``BatchNorm2d(768)`` after the 2x2 convolution (P-DARTS).
    """

    def __init__(self, C: int, num_classes: int, batchnorm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if batchnorm:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 5:
            raise ValueError(
                f"auxiliary=True: the ImageNet auxiliary head expects 7x7 features (224x224 inputs), got "
                f"{tuple(x.shape[-2:])}; build the network with auxiliary=False for small inputs"
            )
        features = self.features(x)
        _check_head_output(features, "the ImageNet auxiliary head", "7x7 (224x224 images)")
        return self.classifier(features.flatten(1))


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")


class _GenotypeNetwork(nn.Module, ABC):
    """What the CIFAR and ImageNet networks share: argument checks, cell stacking, auxiliary head, classifier and
    the forward pass; a subclass builds its stem (:meth:`_build_stem`, :meth:`_stem`) and its auxiliary head.

    Modules are created in the order stem, cells, auxiliary head, classifier: the order of the parameters (and so
    of the optimizer state in checkpoints) and of the random initialisation.
    """

    def __init__(
        self,
        init_channels: int,
        num_classes: int,
        layers: int,
        auxiliary: bool,
        genotype: GenotypeSpec,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        _check_int(init_channels, "init_channels", 1)
        _check_int(num_classes, "num_classes", 1)
        _check_int(layers, "layers", 1)
        _check_int(in_channels, "in_channels", 1)
        self.genotype = resolve_genotype(genotype)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.drop_path_prob: float = 0.0
        C_prev_prev, C_prev, reduction_prev = self._build_stem(in_channels, init_channels)
        C_auxiliary, C_final = self._build_cells(self.genotype, init_channels, layers, C_prev_prev, C_prev,
                                                 reduction_prev)
        self.auxiliary_head: nn.Module | None = self._build_auxiliary_head(C_auxiliary, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_final, num_classes)

    @abstractmethod
    def _build_stem(self, in_channels: int, C: int) -> tuple[int, int, bool]:
        """Create the stem modules; return the channels of the first cell's two inputs and whether the first of
        them has twice the resolution of the second (``reduction_prev``)."""

    @abstractmethod
    def _build_auxiliary_head(self, C: int, num_classes: int) -> nn.Module:
        """The auxiliary classifier on the ``C`` channels after cell ``2 * layers // 3``."""

    @abstractmethod
    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two input states ``(s0, s1)`` of the first cell."""

    def _build_cells(
        self,
        genotype: Genotype,
        C: int,
        layers: int,
        C_prev_prev: int,
        C_prev: int,
        reduction_prev: bool,
    ) -> tuple[int, int]:
        """Stack ``layers`` cells; return (channels at the auxiliary position, final channels)."""
        self._auxiliary_position = 2 * layers // 3
        reduction_positions = {layers // 3, 2 * layers // 3}
        self.cells = nn.ModuleList()
        C_curr = C
        C_auxiliary = C_prev
        for position in range(layers):
            reduction = position in reduction_positions
            if reduction:
                C_curr *= 2
            cell = GenotypeCell(genotype, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if position == self._auxiliary_position:
                C_auxiliary = C_prev
        return C_auxiliary, C_prev

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(logits, aux_logits)``; ``aux_logits`` is None unless training with the auxiliary head."""
        aux_logits = None
        s0, s1 = self._stem(x)
        for position, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if position == self._auxiliary_position and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux_logits


class NetworkCIFAR(_GenotypeNetwork):
    """The CIFAR evaluation network (DARTS arXiv:1806.09055 Sec. 3.2 / A.2: C=36, 20 cells).

    Args:
        init_channels: C, the channels of the first cell (36 in the papers).
        num_classes: output classes.
        layers: number of cells (20 in the papers).
        auxiliary: add the auxiliary head after cell ``2 * layers // 3`` (needs 32x32-sized inputs).
        genotype: a Genotype, a published name, a path to a genotype.json or a mapping
            (see :func:`~networks.nas.genotypes.resolve_genotype`).
        in_channels: image channels.
    """

    def _build_stem(self, in_channels: int, C: int) -> tuple[int, int, bool]:
        C_stem = 3 * C  # stem_multiplier 3
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(C_stem),
        )
        return C_stem, C_stem, False

    def _build_auxiliary_head(self, C: int, num_classes: int) -> nn.Module:
        return AuxiliaryHeadCIFAR(C, num_classes)

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stem(x)
        return s, s


class NetworkImageNet(_GenotypeNetwork):
    """The ImageNet mobile-setting network (DARTS arXiv:1806.09055 Sec. 3.3 / A.2: C=48, 14 cells).

    The final pooling is global average pooling: identical to the official ``AvgPool2d(7)`` for
    224x224 inputs (7x7 final maps), and it also accepts other input sizes.

    Args:
        init_channels: C, the channels of the first cell (48 in the papers); even (the first cell's
            FactorizedReduce splits them in two).
        num_classes: output classes (1000).
        layers: number of cells (14 in the papers).
        auxiliary: add the auxiliary head after cell ``2 * layers // 3`` (needs 224x224-sized inputs).
        genotype: a Genotype, a published name, a path to a genotype.json or a mapping.
        in_channels: image channels.
        auxiliary_batchnorm: ``BatchNorm2d(768)`` after the auxiliary head's 2x2 convolution, as in P-DARTS's
            model.py (DARTS's and PC-DARTS's have none); see :class:`AuxiliaryHeadImageNet`.
    """

    def __init__(
        self,
        init_channels: int,
        num_classes: int,
        layers: int,
        auxiliary: bool,
        genotype: GenotypeSpec,
        in_channels: int = 3,
        auxiliary_batchnorm: bool = False,
    ) -> None:
        _check_int(init_channels, "init_channels", 2)
        if init_channels % 2:
            raise ValueError(f"init_channels={init_channels}: must be even (the first cell's FactorizedReduce "
                             "splits the stem's channels in two)")
        self.auxiliary_batchnorm = bool(auxiliary_batchnorm)  # a plain attribute, so settable before Module.__init__
        super().__init__(init_channels, num_classes, layers, auxiliary, genotype, in_channels)

    def _build_stem(self, in_channels: int, C: int) -> tuple[int, int, bool]:
        self.stem0 = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        return C, C, True

    def _build_auxiliary_head(self, C: int, num_classes: int) -> nn.Module:
        return AuxiliaryHeadImageNet(C, num_classes, batchnorm=self.auxiliary_batchnorm)

    def _stem(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.stem0(x)
        return s0, self.stem1(s0)


def count_parameters_m(network: nn.Module, exclude_auxiliary: bool = True) -> float:
    """Number of parameters in millions; by default without any ``auxiliary_head`` submodule.

    This is the papers' convention (DARTS, PC-DARTS and P-DARTS report sizes without the auxiliary
    head, which is dropped at test time).
    """
    total = 0
    for name, parameter in network.named_parameters():
        if exclude_auxiliary and "auxiliary_head" in name.split("."):
            continue
        total += parameter.numel()
    return total / 1e6
