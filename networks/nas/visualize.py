"""Pictures of a search: heat map of the softmaxed architecture weights, cell diagrams, genotype text.

The cell diagrams follow the figures of DARTS (arXiv:1806.09055, Figs. 4-5), PC-DARTS and P-DARTS: the
cell inputs ``c_{k-2}`` and ``c_{k-1}``, the intermediate nodes ``0..3``, the output ``c_{k}`` (the
concatenation), and one arrow per kept edge labelled with its operation. Everything is drawn with
matplotlib's Agg canvas directly (no pyplot, no global backend change), so it works headless and in
worker threads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from .genotypes import Genotype
from .search_space import edge_inputs

__all__ = ["cell_text", "genotype_text", "plot_arch_weights", "plot_cell", "render_png", "state_name"]

_CELL_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}
_INPUT_COLOUR, _NODE_COLOUR, _OUTPUT_COLOUR = "#a6d96a", "#abd9e9", "#fee08b"


def state_name(index: int) -> str:
    """Name of a cell state in a genotype: 0 -> ``c_{k-2}``, 1 -> ``c_{k-1}``, ``j >= 2`` -> node ``j - 2``."""
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(index, str(index - 2))


def cell_text(genotype: Genotype, cell: str) -> str:
    """One line per intermediate node, e.g. ``node 0 = sep_conv_3x3(c_{k-1}) + skip_connect(c_{k-2})``."""
    edges = genotype.normal if cell == "normal" else genotype.reduce
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    lines = [f"{_CELL_TITLES[cell]}:"]
    for node in range(len(edges) // 2):
        terms = [f"{op}({state_name(index)})" for op, index in edges[2 * node: 2 * node + 2]]
        lines.append(f"  node {node} = {' + '.join(terms)}")
    lines.append(f"  c_{{k}} = concat({', '.join(state_name(index) for index in concat)})")
    return "\n".join(lines)


def genotype_text(genotype: Genotype) -> str:
    """The genotype as readable text: both cells, then the ``Genotype(...)`` literal."""
    return f"{cell_text(genotype, 'normal')}\n{cell_text(genotype, 'reduce')}\n{genotype!r}\n"


def render_png(figure: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``figure`` to ``path`` (PNG) through a temporary file, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    FigureCanvasAgg(figure)
    figure.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight")
    os.replace(temporary, path)
    return path


def plot_arch_weights(weights: Mapping[str, np.ndarray], candidates: Mapping[str, Sequence[Sequence[str]]],
                      path: str | os.PathLike[str], nodes: int = 4, title: str | None = None) -> Path:
    """Heat maps of softmax(alpha) for the normal and the reduction cell, side by side, to a PNG.

    Rows are edges (``input -> node``), columns candidate operations; each cell shows its weight. When
    the edges of a cell type have different candidates (P-DARTS), columns are candidate positions and
    every square is labelled with its operation.
    """
    layout = edge_inputs(nodes)
    cells = [cell for cell in ("normal", "reduce") if cell in weights]
    figure = Figure(figsize=(6.6 * len(cells), 0.38 * len(layout) + 2.4), layout="constrained")
    axes = figure.subplots(1, len(cells), squeeze=False)[0]
    # One colour scale for both cells, stretched over the weights' range (early in a search they are all
    # close to 1/candidates, and a 0..1 scale would show a flat picture).
    low = min(float(np.min(weights[cell])) for cell in cells)
    high = max(max(float(np.max(weights[cell])) for cell in cells), low + 1e-6)
    for ax, cell in zip(axes, cells, strict=True):
        matrix = np.asarray(weights[cell], dtype=float)
        ops = [tuple(edge_ops) for edge_ops in candidates[cell]]
        same_ops = all(edge_ops == ops[0] for edge_ops in ops)
        image = ax.imshow(matrix, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        ax.set_yticks(range(len(layout)))
        ax.set_yticklabels([f"{state_name(state)} \u2192 {node}" for node, state in layout], fontsize=8)
        ax.set_xticks(range(matrix.shape[1]))
        if same_ops:
            ax.set_xticklabels(ops[0], rotation=40, ha="right", fontsize=8)
        else:
            ax.set_xticklabels([f"#{k + 1}" for k in range(matrix.shape[1])], fontsize=8)
        for row in range(matrix.shape[0]):
            for column in range(matrix.shape[1]):
                label = f"{matrix[row, column]:.3f}"
                if not same_ops:
                    label = f"{ops[row][column]}\n{label}"
                dark = matrix[row, column] < low + 0.6 * (high - low)
                ax.text(column, row, label, ha="center", va="center", fontsize=6,
                        color="white" if dark else "black")
        ax.set_title(f"softmax(alpha): {_CELL_TITLES[cell]}", fontsize=10)
        figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    if title:
        figure.suptitle(title, fontsize=11)
    return render_png(figure, path)


def _node_positions(edges: Sequence[tuple[str, int]], nodes: int) -> dict[int, tuple[float, float]]:
    """x, y of every state, laid out by dependency rank like the papers' (graphviz) figures.

    The inputs are rank 0; a node's rank is one more than its highest-ranked input; the output ``c_{k}``
    (key -1) comes last. States of one rank are stacked vertically, centred.
    """
    rank = {0: 0, 1: 0}
    for node in range(nodes):
        rank[node + 2] = 1 + max(rank[index] for _, index in edges[2 * node: 2 * node + 2])
    rank[-1] = max(rank.values()) + 1
    columns: dict[int, list[int]] = {}
    for state in [0, 1, *range(2, nodes + 2), -1]:
        columns.setdefault(rank[state], []).append(state)
    positions = {}
    for column, states in columns.items():
        spacing = 2.6 if column == 0 else 1.7
        for row, state in enumerate(states):
            positions[state] = (3.2 * column, spacing * ((len(states) - 1) / 2 - row))
    return positions


def _bezier_point(start: tuple[float, float], end: tuple[float, float], bend: float, t: float) -> tuple[float, float]:
    """Point at ``t`` on matplotlib's ``arc3,rad=bend`` curve (a quadratic Bezier, equal-aspect axes)."""
    (x0, y0), (x1, y1) = start, end
    cx, cy = (x0 + x1) / 2 + bend * (y1 - y0), (y0 + y1) / 2 - bend * (x1 - x0)
    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
    return a * x0 + b * cx + c * x1, a * y0 + b * cy + c * y1


def _bend_around_nodes(positions: Mapping[int, tuple[float, float]], source: int, target: int) -> float:
    """The smallest arc bend that keeps the edge ``source -> target`` clear of every other node."""

    def clearance(bend: float) -> float:
        others = [xy for state, xy in positions.items() if state not in (source, target)]
        points = [_bezier_point(positions[source], positions[target], bend, t / 10) for t in range(1, 10)]
        return min((np.hypot(x - ox, y - oy) for x, y in points for ox, oy in others), default=np.inf)

    candidates = (0.0, 0.2, -0.2, 0.35, -0.35, 0.5, -0.5)
    for bend in candidates:
        if clearance(bend) > 0.6:
            return bend
    return max(candidates, key=clearance)


def plot_cell(genotype: Genotype, cell: str, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Diagram of the ``normal`` or ``reduce`` cell of ``genotype`` (as in the papers' figures) to a PNG."""
    edges = genotype.normal if cell == "normal" else genotype.reduce
    concat = genotype.normal_concat if cell == "normal" else genotype.reduce_concat
    nodes = len(edges) // 2
    positions = _node_positions(edges, nodes)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    figure = Figure(figsize=(1.2 * (max(xs) - min(xs)) + 2.5, 1.2 * (max(ys) - min(ys)) + 2.2))
    ax = figure.add_subplot(1, 1, 1)
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    labels = {index: state_name(index) for index in range(nodes + 2)}
    labels[-1] = "c_{k}"
    colours = {0: _INPUT_COLOUR, 1: _INPUT_COLOUR, -1: _OUTPUT_COLOUR}
    placed: list[tuple[float, float]] = []

    def arrow(source: int, target: int, label: str | None, bend: float) -> None:
        start, end = positions[source], positions[target]
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, shrinkA=14, shrinkB=14,
                                     connectionstyle=f"arc3,rad={bend}", color="dimgray", linewidth=1.1))
        if not label:
            return
        # The middle of the arc, or a nearby point along it if another label already sits there.
        for t in (0.5, 0.35, 0.65, 0.25, 0.75):
            x, y = _bezier_point(start, end, bend, t)
            if all(abs(x - px) > 1.3 or abs(y - py) > 0.35 for px, py in placed):
                break
        placed.append((x, y))
        ax.text(x, y, label, fontsize=7, ha="center", va="center", zorder=4,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.9))

    placed.extend(positions.values())  # labels keep clear of the nodes too
    for position, (op, source) in enumerate(edges):
        target = position // 2 + 2
        arrow(source, target, op, _bend_around_nodes(positions, source, target))
    for index in concat:
        arrow(index, -1, None, _bend_around_nodes(positions, index, -1))
    for index, (x, y) in positions.items():
        ax.text(x, y, labels[index], ha="center", va="center", fontsize=10, zorder=5,
                bbox=dict(boxstyle="round,pad=0.35", facecolor=colours.get(index, _NODE_COLOUR), edgecolor="black"))
    ax.set_title(title or _CELL_TITLES[cell], fontsize=11)
    return render_png(figure, path)
