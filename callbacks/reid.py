"""Retrieval pictures of re-ID: for a few queries, the top-10 gallery images with correct / wrong marked.

:class:`RetrievalPictures` runs after every validation and test (``on_validation_end`` / ``on_test_end``,
i.e. after :class:`lightning_modules.reid.ReIDModule` has ranked the gallery) and after ``mode=predict``. It
draws one row per query (query framed blue, then its top gallery images framed green when they show the
same person, red otherwise), saves the PNG under ``<run dir>/retrieval/`` and sends it to the loggers with
:meth:`visionsuite.module.SuiteModule.log_images`. After ``mode=predict`` it also writes
``retrieval/rankings.json`` (every chosen query with its top gallery file names).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from PIL import Image, ImageDraw

from visionsuite.module import run_dir

TILE = (48, 96)  # width, height of one picture in the grid
FRAME = 3
QUERY_COLOUR, CORRECT_COLOUR, WRONG_COLOUR = (40, 90, 230), (30, 170, 60), (220, 40, 40)


def _tile(path: Path, colour: tuple[int, int, int]) -> Image.Image:
    with Image.open(path) as image:
        picture = image.convert("RGB").resize((TILE[0] - 2 * FRAME, TILE[1] - 2 * FRAME))
    framed = Image.new("RGB", TILE, colour)
    framed.paste(picture, (FRAME, FRAME))
    return framed


def draw_retrieval_grid(query_paths: Sequence[Path], ranked_paths: Sequence[Sequence[Path]],
                        correct: Sequence[Sequence[bool]]) -> Image.Image:
    """One row per query: the query, a gap, then its ranked gallery images framed green (same id) / red."""
    columns = 1 + max((len(row) for row in ranked_paths), default=0)
    gap = TILE[0] // 3
    grid = Image.new("RGB", (columns * TILE[0] + gap, len(query_paths) * TILE[1]), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for row, query in enumerate(query_paths):
        top = row * TILE[1]
        grid.paste(_tile(query, QUERY_COLOUR), (0, top))
        for column, (path, is_correct) in enumerate(zip(ranked_paths[row], correct[row], strict=True), start=1):
            grid.paste(_tile(path, CORRECT_COLOUR if is_correct else WRONG_COLOUR), (column * TILE[0] + gap, top))
        draw.line([(TILE[0] + gap // 2, top + 4), (TILE[0] + gap // 2, top + TILE[1] - 4)], fill=(120, 120, 120))
    return grid


class RetrievalPictures(pl.Callback):
    """Draws, saves and logs the retrieval pictures of the latest ranking (see the module docstring).

    Args:
        num_queries: queries drawn per evaluation (the first ones of the evaluation set, so the same
            queries are drawn at every validation).
        top_k: gallery images per row.
    """

    def __init__(self, num_queries: int = 6, top_k: int = 10) -> None:
        self.num_queries, self.top_k = int(num_queries), int(top_k)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._draw(trainer, pl_module, "val")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer, pl_module, "test")

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._draw(trainer, pl_module, "predict", limit=None)

    def _draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str,
              limit: int | None = -1) -> Path | None:
        ranking: dict[str, Any] | None = getattr(pl_module, "latest_ranking", None)
        datamodule = trainer.datamodule
        if not trainer.is_global_zero or ranking is None or ranking["stage"] != stage or datamodule is None:
            return None
        records = datamodule.eval_dataset(stage).records
        count = len(ranking["query_indices"]) if limit is None else min(self.num_queries, len(ranking["query_indices"]))
        queries = [records[int(index)].path for index in ranking["query_indices"][:count]]
        ranked = [[records[int(index)].path for index in row[: self.top_k]] for row in ranking["gallery_indices"][:count]]
        correct = [[bool(flag) for flag in row[: self.top_k]] for row in ranking["correct"][:count]]
        folder = run_dir(pl_module) / "retrieval"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{stage}_epoch{ranking['epoch']:03d}.png" if stage == "val" else f"{stage}.png"
        path = folder / name
        draw_retrieval_grid(queries[:64], ranked[:64], correct[:64]).save(path)
        pl_module.artifacts[f"retrieval_{stage}"] = str(path)
        if hasattr(pl_module, "log_images"):
            pl_module.log_images(f"{stage}/retrieval", [np.asarray(Image.open(path).convert("RGB"))])
        if stage == "predict":
            rankings = [{"query": query.name, "ranked_gallery": [p.name for p in row],
                         "same_identity": flags} for query, row, flags in zip(queries, ranked, correct, strict=True)]
            rankings_path = folder / "rankings.json"
            rankings_path.write_text(json.dumps({"scores": ranking.get("scores", {}), "queries": rankings},
                                                indent=1) + "\n", encoding="utf-8")
            pl_module.artifacts["rankings"] = str(rankings_path)
        return path


__all__ = ["RetrievalPictures", "draw_retrieval_grid"]
