"""Genotypes: the discrete cell architectures that a DARTS-family search exports and training consumes.

A genotype lists, for the normal and the reduction cell, two ``(op, input)`` edges per intermediate
node: pairs ``2i, 2i+1`` feed node ``i + 2``; state 0 is the output of cell k-2, state 1 that of cell
k-1 (DARTS, arXiv:1806.09055, Sec. 2.1 and 2.4). ``*_concat`` lists the states concatenated into the
cell output (nodes 2..5 in every published genotype).

The suite's genotype file (``genotype.json``), written by searches and read by the evaluation
networks (their ``genotype`` argument, :func:`resolve_genotype`), is::

    {"format": "visionsuite-genotype/1",
     "normal": [["sep_conv_3x3", 0], ...], "normal_concat": [2, 3, 4, 5],
     "reduce": [...], "reduce_concat": [...],
     "metadata": {...}}            # optional: source experiment, epoch, arch weights, ...

Published genotypes: DARTS_V1 / DARTS_V2 (first / second order, arXiv:1806.09055, official code),
PC_DARTS_cifar / PC_DARTS_image (arXiv:1907.05737), PDARTS (arXiv:1904.12760).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionsuite.errors import ConfigError
from visionsuite.io import atomic_write_text

from .operations import PRIMITIVES

__all__ = [
    "GENOTYPE_FORMAT",
    "PUBLISHED_GENOTYPES",
    "Genotype",
    "load_genotype_json",
    "resolve_genotype",
    "save_genotype_json",
    "validate_genotype",
]

GENOTYPE_FORMAT = "visionsuite-genotype/1"
_CELL_KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")

Edge = tuple[str, int]


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _parse_edges(value: Any, key: str, source: str) -> tuple[Edge, ...]:
    if not _is_sequence(value):
        raise ValueError(f"{source}: {key!r} must be a list of [op, input] pairs, got {type(value).__name__}")
    edges = []
    for position, edge in enumerate(value):
        if (
            not _is_sequence(edge)
            or len(edge) != 2
            or not isinstance(edge[0], str)
            or isinstance(edge[1], bool)
            or not isinstance(edge[1], int)
        ):
            raise ValueError(
                f"{source}: {key}[{position}] must be an [op name, input index] pair such as "
                f'["sep_conv_3x3", 0], got {edge!r}'
            )
        edges.append((edge[0], int(edge[1])))
    return tuple(edges)


def _parse_concat(value: Any, key: str, source: str) -> tuple[int, ...]:
    if not _is_sequence(value) or not all(
        isinstance(index, int) and not isinstance(index, bool) for index in value
    ):
        raise ValueError(f"{source}: {key!r} must be a list of integers such as [2, 3, 4, 5], got {value!r}")
    return tuple(int(index) for index in value)


@dataclass(frozen=True)
class Genotype:
    """A discrete cell pair. Lists given to the constructor are stored as tuples (hashable, immutable)."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for key in ("normal", "reduce"):
            object.__setattr__(self, key, tuple(tuple(edge) for edge in getattr(self, key)))
        for key in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, key, tuple(getattr(self, key)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data in the suite's genotype format (without metadata)."""
        return {
            "format": GENOTYPE_FORMAT,
            "normal": [[op, index] for op, index in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, index] for op, index in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "genotype") -> Genotype:
        """Parse the genotype format (``format`` and ``metadata`` keys optional; ``format`` checked).

        Raises:
            ValueError: a missing key or a value of the wrong type; ``source`` starts the message.
        """
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{source}: expected a mapping with keys {', '.join(_CELL_KEYS)}, got {type(data).__name__}"
            )
        missing = [key for key in _CELL_KEYS if key not in data]
        if missing:
            raise ValueError(
                f"{source}: missing key(s) {', '.join(missing)}; a genotype needs {', '.join(_CELL_KEYS)}"
            )
        file_format = data.get("format", GENOTYPE_FORMAT)
        if file_format != GENOTYPE_FORMAT:
            raise ValueError(f"{source}: unsupported format {file_format!r}; expected {GENOTYPE_FORMAT!r}")
        return cls(
            normal=_parse_edges(data["normal"], "normal", source),
            normal_concat=_parse_concat(data["normal_concat"], "normal_concat", source),
            reduce=_parse_edges(data["reduce"], "reduce", source),
            reduce_concat=_parse_concat(data["reduce_concat"], "reduce_concat", source),
        )


def _genotype(normal: str, reduce: str) -> Genotype:
    """Build a published genotype from ``"op,input op,input ..."`` strings (concat nodes 2..5)."""

    def parse(text: str) -> tuple[Edge, ...]:
        return tuple((op, int(index)) for op, index in (item.split(",") for item in text.split()))

    return Genotype(parse(normal), (2, 3, 4, 5), parse(reduce), (2, 3, 4, 5))


PUBLISHED_GENOTYPES: dict[str, Genotype] = {
    # DARTS first order (arXiv:1806.09055, official code).
    "DARTS_V1": _genotype(
        "sep_conv_3x3,1 sep_conv_3x3,0 skip_connect,0 sep_conv_3x3,1 "
        "skip_connect,0 sep_conv_3x3,1 sep_conv_3x3,0 skip_connect,2",
        "max_pool_3x3,0 max_pool_3x3,1 skip_connect,2 max_pool_3x3,0 "
        "max_pool_3x3,0 skip_connect,2 skip_connect,2 avg_pool_3x3,0",
    ),
    # DARTS second order (arXiv:1806.09055, Fig. 4/5): 2.76% CIFAR-10 error, 3.3M parameters.
    "DARTS_V2": _genotype(
        "sep_conv_3x3,0 sep_conv_3x3,1 sep_conv_3x3,0 sep_conv_3x3,1 "
        "sep_conv_3x3,1 skip_connect,0 skip_connect,0 dil_conv_3x3,2",
        "max_pool_3x3,0 max_pool_3x3,1 skip_connect,2 max_pool_3x3,1 "
        "max_pool_3x3,0 skip_connect,2 skip_connect,2 max_pool_3x3,1",
    ),
    # PC-DARTS searched on CIFAR-10 (arXiv:1907.05737): 2.57% error, 3.6M parameters.
    "PC_DARTS_cifar": _genotype(
        "sep_conv_3x3,1 skip_connect,0 sep_conv_3x3,0 dil_conv_3x3,1 "
        "sep_conv_5x5,0 sep_conv_3x3,1 avg_pool_3x3,0 dil_conv_3x3,1",
        "sep_conv_5x5,1 max_pool_3x3,0 sep_conv_5x5,1 sep_conv_5x5,2 "
        "sep_conv_3x3,0 sep_conv_3x3,3 sep_conv_3x3,1 sep_conv_3x3,2",
    ),
    # PC-DARTS searched on ImageNet (arXiv:1907.05737): 24.2/7.3 top-1/top-5 error, 5.3M parameters.
    "PC_DARTS_image": _genotype(
        "skip_connect,1 sep_conv_3x3,0 sep_conv_3x3,0 skip_connect,1 "
        "sep_conv_3x3,1 sep_conv_3x3,3 sep_conv_3x3,1 dil_conv_5x5,4",
        "sep_conv_3x3,0 skip_connect,1 dil_conv_5x5,2 max_pool_3x3,1 "
        "sep_conv_3x3,2 sep_conv_3x3,1 sep_conv_5x5,0 sep_conv_3x3,3",
    ),
    # P-DARTS searched on CIFAR-10 (arXiv:1904.12760): 2.50% error, 3.4M parameters.
    "PDARTS": _genotype(
        "skip_connect,0 dil_conv_3x3,1 skip_connect,0 sep_conv_3x3,1 "
        "sep_conv_3x3,1 sep_conv_3x3,3 sep_conv_3x3,0 dil_conv_5x5,4",
        "avg_pool_3x3,0 sep_conv_5x5,1 sep_conv_3x3,0 dil_conv_5x5,2 "
        "max_pool_3x3,0 dil_conv_3x3,1 dil_conv_3x3,1 dil_conv_5x5,3",
    ),
}
PUBLISHED_GENOTYPES["DARTS"] = PUBLISHED_GENOTYPES["DARTS_V2"]


def validate_genotype(
    genotype: Genotype,
    primitives: Sequence[str] = PRIMITIVES,
    *,
    num_nodes: int | None = 4,
) -> None:
    """Check that ``genotype`` describes buildable cells.

    Args:
        genotype: the genotype to check.
        primitives: the allowed operation names.
        num_nodes: intermediate nodes per cell (4 in every DARTS-family paper); ``None`` infers it
            from the number of edges (which must then be even).

    Raises:
        ValueError: an unknown op, a wrong edge count, an input index out of range for its node
            (node ``i + 2`` takes inputs ``0 .. i + 1``) or a concat index that is not a cell state; each
            message starts with ``genotype.<cell>``.
    """
    if not isinstance(genotype, Genotype):
        raise TypeError(f"genotype must be a Genotype, got {type(genotype).__name__}")
    for cell in ("normal", "reduce"):
        edges = getattr(genotype, cell)
        concat = getattr(genotype, f"{cell}_concat")
        nodes = num_nodes
        if nodes is None:
            if len(edges) == 0 or len(edges) % 2:
                raise ValueError(
                    f"genotype.{cell} has {len(edges)} edges; expected a positive even number "
                    f"(2 input edges per intermediate node)"
                )
            nodes = len(edges) // 2
        if len(edges) != 2 * nodes:
            raise ValueError(
                f"genotype.{cell} has {len(edges)} edges; expected exactly {2 * nodes}: 2 input edges for "
                f"each of the {nodes} intermediate nodes (edges 2i and 2i+1 feed node i+2)"
            )
        for position, edge in enumerate(edges):
            if (
                len(edge) != 2
                or not isinstance(edge[0], str)
                or isinstance(edge[1], bool)
                or not isinstance(edge[1], int)
            ):
                raise ValueError(
                    f"genotype.{cell}[{position}] must be an (op name, input index) pair, got {edge!r}"
                )
            op, index = edge
            if op not in primitives:
                raise ValueError(
                    f"genotype.{cell}[{position}]: unknown op {op!r}; known ops: {', '.join(primitives)}"
                )
            node = position // 2 + 2
            if not 0 <= index < node:
                raise ValueError(
                    f"genotype.{cell}[{position}] = ({op!r}, {index}): input index {index} is out of range "
                    f"for node {node}, which takes inputs 0..{node - 1} (0 and 1 are the cell inputs)"
                )
        if len(concat) == 0:
            raise ValueError(
                f"genotype.{cell}_concat is empty; expected nodes such as {list(range(2, 2 + nodes))}"
            )
        for index in concat:
            if isinstance(index, bool) or not isinstance(index, int) or not 2 <= index < nodes + 2:
                raise ValueError(
                    f"genotype.{cell}_concat contains {index!r}, out of range: with {nodes} intermediate "
                    f"nodes the concatenated states are in 2..{nodes + 1}"
                )
        if len(set(concat)) != len(concat):
            raise ValueError(f"genotype.{cell}_concat {list(concat)} repeats a node")


def _to_json_value(value: Any) -> Any:
    """``json.dump`` fallback: tensors and numpy arrays/scalars via ``tolist()``, paths as strings."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON serialisable")


def save_genotype_json(genotype: Genotype, path: str | os.PathLike[str], **metadata: Any) -> Path:
    """Write ``genotype`` (validated) and optional ``metadata`` to ``path`` atomically; return the path.

    Metadata values may be JSON types, tensors or numpy arrays (stored as nested lists).
    """
    validate_genotype(genotype)
    path = Path(path)
    data = genotype.to_dict()
    if metadata:
        data["metadata"] = metadata
    text = json.dumps(data, indent=2, default=_to_json_value) + "\n"
    return atomic_write_text(path, text)


def load_genotype_json(path: str | os.PathLike[str]) -> Genotype:
    """Read and validate a genotype file written by :func:`save_genotype_json` (metadata is ignored).

    Raises:
        ConfigError: naming ``path``, if the file is missing, not valid JSON, lacks a key, holds a
            value of the wrong type or describes an invalid genotype.
    """
    path = Path(path)
    source = f"genotype file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{source} does not exist; give a published genotype name ({', '.join(PUBLISHED_GENOTYPES)}) or the "
            "path of an existing genotype.json"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source} cannot be read: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source} is not valid JSON: {error}") from None
    try:
        genotype = Genotype.from_dict(data, source=source)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    try:
        validate_genotype(genotype)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None
    return genotype


def resolve_genotype(spec: str | os.PathLike[str] | Genotype | Mapping[str, Any]) -> Genotype:
    """Turn the ``genotype`` argument of an evaluation network into a validated :class:`Genotype`.

    Args:
        spec: a published name (see :data:`PUBLISHED_GENOTYPES`), a path to a genotype.json (a string
            containing ``/`` or ending in ``.json``, or a ``PathLike``), a mapping in the genotype
            format (e.g. a Hydra ``DictConfig``), or a Genotype.

    Raises:
        ValueError: an unknown name (the message lists the known names) or an invalid genotype; each
            message starts with ``genotype``.
        ConfigError: a genotype file that is missing or invalid (naming the file).
    """
    if isinstance(spec, Genotype):
        genotype = spec
    elif isinstance(spec, os.PathLike):
        return load_genotype_json(spec)
    elif isinstance(spec, str):
        if "/" in spec or os.sep in spec or spec.endswith(".json"):
            return load_genotype_json(spec)
        if spec not in PUBLISHED_GENOTYPES:
            raise ValueError(
                f"genotype={spec!r} is not a published genotype; known names: {', '.join(PUBLISHED_GENOTYPES)}; "
                f"a path to a genotype.json file (e.g. written by a search run) also works"
            )
        genotype = PUBLISHED_GENOTYPES[spec]
    elif isinstance(spec, Mapping):
        genotype = Genotype.from_dict(spec, source="genotype")
    else:
        raise TypeError(
            f"genotype must be a published name ({', '.join(PUBLISHED_GENOTYPES)}), a path to a "
            f"genotype.json file or a mapping, got {type(spec).__name__}"
        )
    validate_genotype(genotype)
    return genotype
