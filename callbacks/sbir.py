"""Pictures of sketch-based retrieval in ``mode=predict``: each query sketch beside its top-10 photos.

A callback (the files are a side effect of prediction): after ``trainer.predict`` it reads the module's
``retrievals`` (query path, ranked photo paths, their classes and distances) and writes, into
``<run dir>/retrievals/``, one PNG per query (the sketch, a gap, then the photos left to right in rank order,
each captioned with its class) and ``retrievals.json`` with the same lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
from PIL import Image, ImageDraw

from datamodules.sbir.datasets import load_rgb


def retrieval_picture(query: str, photos: list[str], captions: list[str], tile: int = 96) -> Image.Image:
    """The query sketch, then its ranked photos, each ``tile`` pixels wide with a caption under it."""
    caption_height, gap = 14, tile // 4
    sheet = Image.new("RGB", (tile * (len(photos) + 1) + gap, tile + caption_height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    sheet.paste(load_rgb(Path(query)).resize((tile, tile)), (0, 0))
    draw.text((2, tile + 1), "query", fill=(0, 0, 0))
    for rank, (photo, caption) in enumerate(zip(photos, captions, strict=True)):
        left = tile * (rank + 1) + gap
        sheet.paste(load_rgb(Path(photo)).resize((tile, tile)), (left, 0))
        draw.text((left + 2, tile + 1), f"{rank + 1}. {caption}"[: tile // 6], fill=(0, 0, 0))
    return sheet


class RetrievalPictureWriter(pl.Callback):
    """Writes ``retrievals/<query>_top<k>.png`` and ``retrievals/retrievals.json`` after prediction.

    Args:
        folder: sub-folder of the run directory.
        tile: side of each picture in the strip, in pixels.
    """

    def __init__(self, folder: str = "retrievals", tile: int = 96) -> None:
        self.folder, self.tile = folder, tile

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        retrievals = getattr(pl_module, "retrievals", None)
        if not retrievals or not trainer.is_global_zero:
            return
        out = Path(trainer.default_root_dir) / self.folder
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for index, entry in enumerate(retrievals):
            name = f"{index:04d}_{Path(entry['query']).stem}_top{len(entry['photos'])}.png"
            retrieval_picture(entry["query"], entry["photos"], [str(c) for c in entry["classes"]], self.tile).save(
                out / name)
            written.append(out / name)
        (out / "retrievals.json").write_text(json.dumps(retrievals, indent=2) + "\n", encoding="utf-8")
        pl_module.artifacts["retrievals"] = str(out)
        if hasattr(pl_module, "log_images"):
            pl_module.log_images("predict/retrievals", written[:8])
