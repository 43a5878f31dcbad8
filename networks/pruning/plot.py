"""Per-layer channel counts of pruned structures, side by side (a PNG, drawn on matplotlib's Agg canvas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from networks.nas.visualize import render_png


def plot_channel_counts(series: Mapping[str, Sequence[int]], layers: Sequence[str], path: str | Path,
                        title: str = "") -> Path:
    """Grouped bars: one group per layer, one bar per structure in ``series`` (label -> widths)."""
    count = len(layers)
    width = 0.8 / max(len(series), 1)
    positions = np.arange(count)
    figure = Figure(figsize=(max(6.0, 0.28 * count + 2), 3.6))
    axes = figure.add_subplot(1, 1, 1)
    for index, (label, widths) in enumerate(series.items()):
        axes.bar(positions + (index - (len(series) - 1) / 2) * width, list(widths), width, label=label)
    axes.set_xticks(positions)
    axes.set_xticklabels([_short(name) for name in layers], rotation=90, fontsize=6)
    axes.set_ylabel("channels")
    axes.set_xlabel("gated layer")
    if title:
        axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return render_png(figure, path)


def _short(name: str) -> str:
    """``layer2.3.gate1`` -> ``layer2.3``; ``features.4.gate`` -> ``features.4``."""
    parts = name.split(".")
    return ".".join(part for part in parts if not part.startswith("gate")) or name


__all__ = ["plot_channel_counts"]
