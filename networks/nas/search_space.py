"""The differentiable search space shared by the DARTS family: mixed op, search cell, search network.

DARTS (Liu et al., arXiv:1806.09055, Sec. 2.1-2.2) relaxes the choice of one operation per edge into a
softmax-weighted sum over candidate operations (Eq. 2); a cell has two inputs and ``nodes`` intermediate
nodes, each fed by every earlier state, so a 4-node cell has 14 edges. The architecture is the pair of
matrices ``alpha_normal`` and ``alpha_reduce`` (edges x candidates), kept apart from the network weights
(:meth:`SearchNetwork.arch_parameters` / :meth:`SearchNetwork.weight_parameters`) because they are
optimised on a different data split by a different optimizer.

Every edge leaving a cell state applies the same weight-free operations to the same input (pooling with
its BatchNorm, the ReLU opening the convolutions, the PC-DARTS bypass), so each state's :class:`EdgeSource`
computes them once for all its edges; each :class:`MixedOp` holds only its edge's weighted operations.

The space is the one every DARTS-family method searches; the methods differ in options of it:

* ``candidate_ops``: the candidate operations of every edge (default: all :data:`PRIMITIVES`), either one
  list for all edges or one list per edge and cell type. P-DARTS (arXiv:1904.12760) shrinks these lists
  between its stages; every edge of a cell type must have the same number of candidates so that alpha
  stays a matrix.
* PC-DARTS (arXiv:1907.05737, Sec. 3.2-3.3): ``partial_channel_k`` (K) sends the first C/K channels of an
  edge's input through the mixed op (whose operations are built with C/K channels) and lets the rest
  bypass it (2x2 max-pool on stride-2 edges), then shuffles the channels in K groups;
  ``edge_normalization`` adds ``beta_normal`` / ``beta_reduce`` (one weight per edge), and a node's input
  becomes ``sum_i softmax(beta over the node's incoming edges)_i * MixedOp_i``. beta is an architecture
  parameter like alpha, so every architecture-gradient mode and the architecture optimizer treat it alike.
* P-DARTS (arXiv:1904.12760, Sec. 3.3): ``skip_dropout`` (settable with :meth:`SearchNetwork.set_skip_dropout`)
  applies dropout after the identity skip-connect of every edge during training.
* ``stem="imagenet"``: the three stride-2 3x3 convolutions of the ImageNet search network (PC-DARTS searches
  directly on ImageNet); cells then start at 1/8 of the input resolution.

How alpha gets its gradient (first order, second order, Amended-DARTS) is not part of the space: see
``networks.nas.arch_gradients``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .operations import OPS, PRIMITIVES, FactorizedReduce, Identity, LayoutAwareBatchNorm2d, ReLUConvBN, Zero

__all__ = [
    "CELL_TYPES",
    "SHARED_OPS",
    "EdgeInput",
    "EdgeSource",
    "MixedOp",
    "SearchCell",
    "SearchNetwork",
    "edge_inputs",
    "normalize_candidate_ops",
    "num_cell_edges",
    "concat_and_shuffle",
]

CELL_TYPES = ("normal", "reduce")
STEMS = ("cifar", "imagenet")
CandidateOps = dict[str, tuple[tuple[str, ...], ...]]
CandidateSpec = Sequence[str] | Mapping[str, Sequence[Sequence[str]]] | str | os.PathLike[str] | None


def num_cell_edges(nodes: int) -> int:
    """Edges of a cell with ``nodes`` intermediate nodes: node ``i`` has ``i + 2`` inputs (14 for 4 nodes)."""
    return sum(2 + node for node in range(nodes))


def edge_inputs(nodes: int) -> list[tuple[int, int]]:
    """``(node, input state)`` of every edge in order: state 0 = c_{k-2}, 1 = c_{k-1}, ``j >= 2`` = node ``j - 2``."""
    return [(node, state) for node in range(nodes) for state in range(node + 2)]


def _as_op_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{where} must be a list of operation names such as ['sep_conv_3x3', 'skip_connect'], "
                          f"got {value!r}")
    ops = tuple(value)
    if not ops:
        raise ValueError(f"{where} is empty: every edge needs at least one candidate operation.")
    for op in ops:
        if op not in OPS:
            raise ValueError(f"{where}: operation {op!r} is not in the search space; "
                              f"known operations: {', '.join(PRIMITIVES)}.")
    if len(set(ops)) != len(ops):
        raise ValueError(f"{where} lists an operation twice: {list(ops)}.")
    return ops


def normalize_candidate_ops(spec: CandidateSpec, nodes: int = 4) -> CandidateOps:
    """Turn the ``candidate_ops`` option into ``{"normal": per-edge tuples, "reduce": per-edge tuples}``.

    Args:
        spec: None (all :data:`PRIMITIVES` on every edge), one list of operation names (the same on every
            edge of both cells), a mapping ``{"normal": [[...], ...], "reduce": [[...], ...]}`` with one
            list per edge (``num_cell_edges(nodes)`` of them, in the order of :func:`edge_inputs`), or the
            path of a ``candidates.json`` written by a P-DARTS stage (read by
            :func:`~networks.nas.progressive.load_candidates_json`).
        nodes: intermediate nodes per cell.

    Raises:
        ValueError: an operation outside the search space, an empty or repeated candidate list, a wrong
            number of edges, or edges of one cell type with different numbers of candidates (each message
            starts with ``candidate_ops``).
        ConfigError: a candidates file that is missing or not one (naming the file).
    """
    edges = num_cell_edges(nodes)
    if spec is None:
        spec = PRIMITIVES
    if isinstance(spec, (str, os.PathLike)):
        from .progressive import load_candidates_json  # progressive imports this module

        spec = load_candidates_json(spec)  # the P-DARTS hand-off file
    if isinstance(spec, Mapping):
        unknown = set(spec) - set(CELL_TYPES)
        missing = [cell for cell in CELL_TYPES if cell not in spec]
        if unknown or missing:
            raise ValueError(f"candidate_ops must map exactly {', '.join(CELL_TYPES)} to per-edge lists; "
                              f"got keys {sorted(spec)}.")
        result: CandidateOps = {}
        for cell in CELL_TYPES:
            per_edge = spec[cell]
            if isinstance(per_edge, (str, bytes)) or not isinstance(per_edge, Sequence) or len(per_edge) != edges:
                count = len(per_edge) if isinstance(per_edge, Sequence) else type(per_edge).__name__
                raise ValueError(f"candidate_ops.{cell} needs one list of operations per edge "
                                  f"({edges} edges for {nodes} nodes), got {count}.")
            lists = tuple(_as_op_list(ops, f"candidate_ops.{cell}[{edge}]") for edge, ops in enumerate(per_edge))
            sizes = sorted({len(ops) for ops in lists})
            if len(sizes) != 1:
                raise ValueError(f"candidate_ops.{cell}: every edge needs the same number of candidates "
                                  f"(alpha is an edges x candidates matrix), got sizes {sizes}.")
            result[cell] = lists
        return result
    ops = _as_op_list(spec, "candidate_ops")
    return {cell: (ops,) * edges for cell in CELL_TYPES}


def concat_and_shuffle(head: torch.Tensor, tail: torch.Tensor, groups: int) -> torch.Tensor:
    """The PC-DARTS edge output (Sec. 3.2): ``cat([head, tail], 1)`` with its channels shuffled in ``groups``
    equal groups (ShuffleNet), in one copy. ``head`` holds one group of channels, ``tail`` the other
    ``groups - 1``; output channel ``j * groups + g`` is channel ``j`` of group ``g``."""
    batch, channels, height, width = head.shape
    if head.is_contiguous(memory_format=torch.channels_last) and not head.is_contiguous():
        # Channels-last: the same interleaving along the innermost (channel) dimension, output channels-last.
        head_last = head.permute(0, 2, 3, 1).unsqueeze(-1)
        tail_last = tail.permute(0, 2, 3, 1).reshape(batch, height, width, groups - 1, channels).transpose(-1, -2)
        shuffled = torch.cat([head_last, tail_last], dim=-1).view(batch, height, width, channels * groups)
        return shuffled.permute(0, 3, 1, 2)
    tail = tail.view(batch, groups - 1, channels, height, width).transpose(1, 2)
    return torch.cat([head.unsqueeze(2), tail], dim=2).view(batch, channels * groups, height, width)


#: Candidates without weights whose search-mode output (pooling, then BatchNorm(affine=False)) is the same on
#: every edge leaving a state: :class:`EdgeSource` computes them once per state.
SHARED_OPS = ("max_pool_3x3", "avg_pool_3x3")


class EdgeInput:
    """One cell state as its outgoing edges see it; each shared part is computed once, on first use.

    ``head``: the channels that go through the operations (the first C/K with PC-DARTS, else all);
    :attr:`rectified`: ``relu(head)``, the input of every operation that starts with a ReLU; :meth:`pooled`:
    the pooling candidates with their BatchNorm; :attr:`bypass`: the PC-DARTS channels that skip the
    operations (2x2 max-pooled on stride-2 edges). Every edge from a state sees the same values, so
    computing them per edge, as the official code does, only repeats work.
    """

    def __init__(self, state: torch.Tensor, partial_channel_k: int, stride: int, pools: nn.ModuleDict) -> None:
        split = state.shape[1] // partial_channel_k
        self.head = state[:, :split] if partial_channel_k > 1 else state
        self._tail = state[:, split:] if partial_channel_k > 1 else None
        self._stride = stride
        self._pools = pools
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def rectified(self) -> torch.Tensor:
        if "relu" not in self._cache:
            self._cache["relu"] = F.relu(self.head)
        return self._cache["relu"]

    def pooled(self, name: str) -> torch.Tensor:
        if name not in self._cache:
            if name not in self._pools:
                raise ValueError(f"this state's EdgeSource has no {name!r}: build it with the candidate names of "
                                 f"every edge leaving the state (it holds {sorted(self._pools)})")
            self._cache[name] = self._pools[name](self.head)
        return self._cache[name]

    @property
    def bypass(self) -> torch.Tensor:
        if self._tail is None:
            raise ValueError("the bypass exists only with PC-DARTS partial channels (partial_channel_k > 1)")
        if "bypass" not in self._cache:
            tail = self._tail
            if self._stride == 2:  # odd sizes round up like the stride-2 operations
                tail = F.max_pool2d(tail, 2, 2, ceil_mode=True)
            self._cache["bypass"] = tail
        return self._cache["bypass"]


class EdgeSource(nn.Module):
    """The weight-free part of the edges leaving one cell state: turns the state into an :class:`EdgeInput`.

    Owns the pooling candidates (``pools``, each followed by ``BatchNorm2d(C / K, affine=False)`` as in the
    official search code) of every edge leaving the state: their BatchNorms would all see the same input
    and keep the same running statistics, so one per state gives the same outputs in training and eval.

    Args:
        C: channels of the state.
        stride: 2 for the cell inputs of a reduction cell, else 1.
        pools: the candidate names of the edges leaving the state; those in :data:`SHARED_OPS` get a module.
        partial_channel_k: K of PC-DARTS (1: every channel goes through the operations).
    """

    def __init__(self, C: int, stride: int, pools: Sequence[str] = (), partial_channel_k: int = 1) -> None:
        super().__init__()
        self.stride, self.partial_channel_k = stride, partial_channel_k
        C_op = C // partial_channel_k
        self.pools = nn.ModuleDict({name: nn.Sequential(OPS[name](C_op, stride, False),
                                                        LayoutAwareBatchNorm2d(C_op, affine=False))
                                    for name in SHARED_OPS if name in pools})

    def forward(self, state: torch.Tensor) -> EdgeInput:
        return EdgeInput(state, self.partial_channel_k, self.stride, self.pools)

    def extra_repr(self) -> str:
        return f"stride={self.stride}, partial_channel_k={self.partial_channel_k}"


class _FromSource(nn.Module):
    """Stands for a :data:`SHARED_OPS` candidate in :attr:`MixedOp.ops`; its output comes from the edge's
    :class:`EdgeSource`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def extra_repr(self) -> str:
        return f"{self.name!r}, computed once per state by its EdgeSource"


class MixedOp(nn.Module):
    """One edge of the search cell: ``sum_o w_o * o(x)`` over its candidate operations (DARTS Eq. 2).

    Operations are built with ``affine=False`` BatchNorm, as in search mode of the official code; the
    pooling candidates (with their BatchNorm) are computed by the state's :class:`EdgeSource`, shared by
    the edges leaving it, and so is ``relu(x)`` for the candidates starting with a ReLU. The ``none``
    operation contributes exactly zero whatever its weight, so it is not evaluated (its weight still takes
    part in the softmax).

    With ``partial_channel_k = K > 1`` (PC-DARTS, arXiv:1907.05737 Sec. 3.2) the operations are built with
    ``C / K`` channels and see the first ``C / K`` channels of the state; the cell adds the bypassed
    channels and shuffles (:func:`concat_and_shuffle`). ``skip_dropout`` (P-DARTS) is the dropout rate
    applied after the identity skip-connect in training.

    Args:
        C: channels in and out.
        stride: 2 on reduction-cell edges from the cell inputs, else 1.
        candidates: operation names of this edge (the order of the weights given to :meth:`forward`).
        partial_channel_k: K of PC-DARTS (1: every channel goes through the operations). Must divide ``C``.
    """

    def __init__(self, C: int, stride: int, candidates: Sequence[str], partial_channel_k: int = 1) -> None:
        super().__init__()
        if C % partial_channel_k:
            raise ValueError(f"partial_channel_k={partial_channel_k} does not divide the {C} channels of a cell edge; "
                             "pick a K that divides the network's init_channels (PC-DARTS: C=16, K=4)")
        self.candidates = tuple(candidates)
        self.partial_channel_k = partial_channel_k
        self.skip_dropout = 0.0
        C_op = C // partial_channel_k
        self.ops = nn.ModuleList(_FromSource(name) if name in SHARED_OPS else OPS[name](C_op, stride, False)
                                 for name in self.candidates)
        self._evaluated = [index for index, op in enumerate(self.ops) if not isinstance(op, Zero)]
        if not self._evaluated:  # only `none`: keep one zero op so the edge still has an output shape
            self._evaluated = [0]
        self._identity = [isinstance(op, Identity) for op in self.ops]
        self._rectified = [hasattr(op, "forward_rectified") for op in self.ops]

    def forward(self, source: EdgeInput, weights: torch.Tensor,
                edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted sum over the candidates applied to ``source.head`` (C / K channels with PC-DARTS).

        ``weights``: one weight per candidate (a row of softmax(alpha)); ``edge_weight``: an optional scalar
        multiplying the edge output (PC-DARTS edge normalisation), folded into the candidate weights, which
        equals scaling the output but saves no activation for beta's gradient.
        """
        if edge_weight is not None:
            weights = weights * edge_weight
        weights = weights.unbind()  # one op (and one stack in backward) instead of one select per candidate
        total = None
        for index in self._evaluated:
            op = self.ops[index]
            if isinstance(op, _FromSource):
                out = source.pooled(op.name)
            elif self._rectified[index]:
                out = op.forward_rectified(source.rectified)
            else:
                out = op(source.head)
            if self._identity[index] and self.skip_dropout > 0:
                out = F.dropout(out, p=self.skip_dropout, training=self.training)
            term = weights[index] * out
            total = term if total is None else total + term
        return total

    def extra_repr(self) -> str:
        return f"candidates={list(self.candidates)}, partial_channel_k={self.partial_channel_k}"


class SearchCell(nn.Module):
    """A search cell: two preprocessed inputs, ``nodes`` intermediate nodes fed by every earlier state.

    Each state that feeds edges gets an :class:`EdgeSource` (``sources``) computing once what its edges
    share. With PC-DARTS a node sums the edges' operation outputs and their (edge-weighted) bypasses apart
    and shuffles once: the shuffle is linear, so this equals summing the shuffled edge outputs.

    Args:
        nodes: intermediate nodes (4 in DARTS).
        multiplier: how many of the last nodes are concatenated into the output (4 in DARTS).
        C_prev_prev, C_prev: channels of the outputs of cells k-2 and k-1.
        C: channels of every node of this cell.
        reduction: a reduction cell (edges from the two inputs use stride 2).
        reduction_prev: the previous cell reduced: state 0 is reduced by FactorizedReduce.
        candidates: the candidate operations of each edge (order of :func:`edge_inputs`).
        partial_channel_k: K of PC-DARTS partial channels (1: off).
    """

    def __init__(self, nodes: int, multiplier: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, candidates: Sequence[Sequence[str]], partial_channel_k: int = 1) -> None:
        super().__init__()
        self.reduction = reduction
        self.nodes = nodes
        self.multiplier = multiplier
        self.partial_channel_k = partial_channel_k
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(C_prev_prev, C, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        layout = edge_inputs(nodes)
        self.edges = nn.ModuleList(
            MixedOp(C, 2 if reduction and state < 2 else 1, candidates[edge], partial_channel_k)
            for edge, (_, state) in enumerate(layout)
        )
        # States 0 .. nodes feed edges (the last node feeds none).
        self.sources = nn.ModuleList(
            EdgeSource(C, 2 if reduction and state < 2 else 1,
                       {name for edge, (_, source) in enumerate(layout) if source == state for name in candidates[edge]},
                       partial_channel_k)
            for state in range(nodes + 1)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, op_weights: torch.Tensor,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            op_weights: ``(edges, candidates)``, softmax(alpha) of this cell type.
            edge_weights: optional ``(edges,)`` weights multiplying each edge's output (PC-DARTS edge
                normalisation: the softmax of beta over each node's incoming edges); None means 1.
        """
        k = self.partial_channel_k
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        sources = [self.sources[0](states[0]), self.sources[1](states[1])]
        offset = 0
        for node in range(self.nodes):
            head = tail = None
            for position, source in enumerate(sources):
                edge = offset + position
                edge_weight = None if edge_weights is None else edge_weights[edge]
                h = self.edges[edge](source, op_weights[edge], edge_weight)
                head = h if head is None else head + h
                if k > 1:
                    t = source.bypass if edge_weight is None else edge_weight * source.bypass
                    tail = t if tail is None else tail + t
            offset += len(sources)
            states.append(head if k == 1 else concat_and_shuffle(head, tail, k))
            if node + 2 < len(self.sources):
                sources.append(self.sources[node + 2](states[-1]))
        return torch.cat(states[-self.multiplier:], dim=1)


class SearchNetwork(nn.Module):
    """The DARTS search network (one-shot supernet) for 32x32-sized images.

    Stem 3x3 conv to ``stem_multiplier * C`` + BN, ``layers`` search cells with reduction cells (channels
    doubled) at ``layers // 3`` and ``2 * layers // 3``, global average pooling, linear classifier. All
    normal cells share ``alpha_normal``, all reduction cells ``alpha_reduce`` (each ``edges x candidates``,
    initialised as ``1e-3 * randn``). Paper setting: C=16, 8 cells, 10 classes (~1.93M weights).

    Args:
        init_channels: C, the channels of the first cell (even: FactorizedReduce splits them in two).
        num_classes: output classes.
        layers: number of cells; at least 3 (two reduction cells and a normal cell).
        nodes: intermediate nodes per cell.
        multiplier: nodes concatenated into a cell's output.
        stem_multiplier: the stem outputs ``stem_multiplier * C`` channels.
        in_channels: image channels.
        candidate_ops: candidate operations per edge, or the path of a P-DARTS ``candidates.json`` (see
            :func:`normalize_candidate_ops`).
        partial_channel_k: PC-DARTS K (1: off); must divide ``C`` with an even quotient (the stride-2
            skip-connect of C/K channels splits them in two).
        edge_normalization: PC-DARTS edge normalisation (adds ``beta_normal`` / ``beta_reduce``).
        stem: ``cifar`` (one 3x3 conv to ``stem_multiplier * C``) or ``imagenet`` (three stride-2 3x3 convs,
            as the PC-DARTS ImageNet search network; ``stem_multiplier`` is then unused).

    Raises:
        ValueError: an argument out of range, each message starting with the argument's name.
    """

    def __init__(self, init_channels: int = 16, num_classes: int = 10, layers: int = 8, *, nodes: int = 4,
                 multiplier: int = 4, stem_multiplier: int = 3, in_channels: int = 3,
                 candidate_ops: CandidateSpec = None, partial_channel_k: int = 1,
                 edge_normalization: bool = False, stem: str = "cifar") -> None:
        super().__init__()
        C = init_channels
        _check_int(C, "init_channels", minimum=2)
        if C % 2:
            raise ValueError(f"init_channels={C}: must be even (FactorizedReduce splits the channels in two)")
        _check_int(num_classes, "num_classes", minimum=1)
        _check_int(nodes, "nodes", minimum=1)
        _check_int(in_channels, "in_channels", minimum=1)
        _check_int(stem_multiplier, "stem_multiplier", minimum=1)
        if isinstance(multiplier, bool) or not isinstance(multiplier, int) or not 1 <= multiplier <= nodes:
            raise ValueError(f"multiplier={multiplier!r}: must be an integer in 1..{nodes} (the nodes of a cell)")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 3:
            raise ValueError(
                f"layers={layers!r}: a search network needs at least 3 cells to hold its two reduction "
                f"cells (at layers//3 and 2*layers//3) apart from a normal cell; DARTS searches with 8"
            )
        _check_int(partial_channel_k, "partial_channel_k", minimum=1)
        if C % partial_channel_k or (C // partial_channel_k) % 2:
            raise ValueError(
                f"partial_channel_k={partial_channel_k} must divide init_channels={C} into an even number of "
                f"channels per edge (the stride-2 skip-connect splits them in two); PC-DARTS uses K=4 with C=16 "
                f"(CIFAR) and K=2 (ImageNet)"
            )
        if stem not in STEMS:
            raise ValueError(f"stem={stem!r}: use one of {', '.join(STEMS)}")
        self.candidates: CandidateOps = normalize_candidate_ops(candidate_ops, nodes)
        self.C, self.num_classes, self.layers = C, num_classes, layers
        self.nodes, self.multiplier = nodes, multiplier
        self.partial_channel_k, self.edge_normalization, self.stem_type = partial_channel_k, bool(edge_normalization), stem

        if stem == "imagenet":
            # PC-DARTS ImageNet search network: two stride-2 convs to C (s0), one more to 1/8 resolution (s1).
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
                nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C),
            )
            self.stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
                                       nn.BatchNorm2d(C))
            C_prev_prev, C_prev, C_curr = C, C, C
            reduction_prev = True  # s0 has twice the resolution of s1
        else:
            C_curr = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(C_curr))
            C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
            reduction_prev = False
        self.reduction_positions = (layers // 3, 2 * layers // 3)
        self.cells = nn.ModuleList()
        for position in range(layers):
            reduction = position in self.reduction_positions
            if reduction:
                C_curr *= 2
            cell = SearchCell(nodes, multiplier, C_prev_prev, C_prev, C_curr, reduction, reduction_prev,
                              self.candidates["reduce" if reduction else "normal"], partial_channel_k)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, multiplier * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

        edges = num_cell_edges(nodes)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(edges, len(self.candidates["normal"][0])))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(edges, len(self.candidates["reduce"][0])))
        self._arch_names: tuple[str, ...] = ("alpha_normal", "alpha_reduce")
        if self.edge_normalization:  # created after alpha, so DARTS networks draw the same initial values
            self.beta_normal = nn.Parameter(1e-3 * torch.randn(edges))
            self.beta_reduce = nn.Parameter(1e-3 * torch.randn(edges))
            self._arch_names += ("beta_normal", "beta_reduce")
        self._node_of_edge = [node for node, _ in edge_inputs(nodes)]

    # -------------------------------------------------------------------------------- parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (``alpha_normal``, ``alpha_reduce`` and, with edge normalisation,
        ``beta_normal``, ``beta_reduce``), optimised on the arch split."""
        return [getattr(self, name) for name in self._arch_names]

    def named_arch_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for name in self._arch_names:
            yield name, getattr(self, name)

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Every parameter that is not an architecture parameter (the supernet's weights)."""
        for name, parameter in self.named_parameters():
            if name not in self._arch_names:
                yield name, parameter

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights, optimised on the weight split."""
        return [parameter for _, parameter in self.named_weight_parameters()]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Softmax of alpha over each edge's candidates, per cell type (detached)."""
        with torch.no_grad():
            return {"normal": F.softmax(self.alpha_normal, dim=-1).detach().clone(),
                    "reduce": F.softmax(self.alpha_reduce, dim=-1).detach().clone()}

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """Normalised beta per cell type (softmax over each node's incoming edges, detached); None without
        edge normalisation."""
        if not self.edge_normalization:
            return None
        with torch.no_grad():
            return {"normal": self._normalized_beta(self.beta_normal).detach().clone(),
                    "reduce": self._normalized_beta(self.beta_reduce).detach().clone()}

    def _normalized_beta(self, beta: torch.Tensor) -> torch.Tensor:
        """Softmax of ``beta`` over the incoming edges of each node (PC-DARTS Sec. 3.3)."""
        parts, start = [], 0
        for node in range(self.nodes):
            count = 2 + node
            parts.append(F.softmax(beta[start:start + count], dim=-1))
            start += count
        return torch.cat(parts)

    def set_skip_dropout(self, rate: float) -> None:
        """Dropout rate after the identity skip-connects of every edge (P-DARTS; 0: off)."""
        for module in self.modules():
            if isinstance(module, MixedOp):
                module.skip_dropout = float(rate)

    def genotype(self, max_skip_connect: int | None = None) -> Any:
        """The discrete architecture derived from the current alphas (see ``networks.nas.derivation``).

        With edge normalisation an edge's strength is its operation weight times its normalised beta
        (PC-DARTS). ``max_skip_connect`` limits the skip-connects of the normal cell (P-DARTS).
        """
        from .derivation import derive_cell
        from .genotypes import Genotype
        from .progressive import derive_with_skip_limit

        weights, edge_weights = self.arch_weights(), self.edge_weights() or {}
        concat = tuple(range(2 + self.nodes - self.multiplier, self.nodes + 2))
        return Genotype(
            normal=tuple(derive_with_skip_limit(weights["normal"], self.candidates["normal"], self.nodes,
                                                max_skip_connect, edge_weights.get("normal"), "normal cell")),
            normal_concat=concat,
            reduce=tuple(derive_cell(weights["reduce"], self.candidates["reduce"], self.nodes,
                                     edge_weights.get("reduce"), "reduction cell")),
            reduce_concat=concat,
        )

    # ----------------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, *, detach_arch: bool = False) -> torch.Tensor:
        """Logits. ``detach_arch=True`` treats alpha as a constant (the weight step needs no alpha gradient
        and then saves fewer activations)."""
        alpha_normal, alpha_reduce = self.alpha_normal, self.alpha_reduce
        if detach_arch:
            alpha_normal, alpha_reduce = alpha_normal.detach(), alpha_reduce.detach()
        weights_normal = F.softmax(alpha_normal, dim=-1)
        weights_reduce = F.softmax(alpha_reduce, dim=-1)
        edges_normal = edges_reduce = None
        if self.edge_normalization:
            beta_normal, beta_reduce = self.beta_normal, self.beta_reduce
            if detach_arch:
                beta_normal, beta_reduce = beta_normal.detach(), beta_reduce.detach()
            edges_normal, edges_reduce = self._normalized_beta(beta_normal), self._normalized_beta(beta_reduce)
        if self.stem_type == "imagenet":
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        for cell in self.cells:
            if cell.reduction:
                s0, s1 = s1, cell(s0, s1, weights_reduce, edges_reduce)
            else:
                s0, s1 = s1, cell(s0, s1, weights_normal, edges_normal)
        return self.classifier(self.global_pooling(s1).flatten(1))


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")
