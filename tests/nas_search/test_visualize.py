"""Heat map, cell diagrams, genotype text, and sending them to loggers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from callbacks.nas import publish_to_loggers, write_search_pictures
from networks.nas.genotypes import PUBLISHED_GENOTYPES
from networks.nas.search_space import SearchNetwork
from networks.nas.visualize import genotype_text, plot_arch_weights, plot_cell
from tests.nas_search.helpers import few_weights_candidates

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def test_cell_diagrams_and_text(tmp_path: Path) -> None:
    genotype = PUBLISHED_GENOTYPES["DARTS_V2"]
    for cell in ("normal", "reduce"):
        path = plot_cell(genotype, cell, tmp_path / f"{cell}.png")
        assert is_png(path)
        with Image.open(path) as image:
            assert min(image.size) > 200
    text = genotype_text(genotype)
    assert "node 3 = skip_connect(c_{k-2}) + dil_conv_3x3(0)" in text
    assert "reduction cell:" in text and "c_{k} = concat(0, 1, 2, 3)" in text
    assert not list(tmp_path.glob(".*partial"))


def test_heat_map_with_shared_and_per_edge_candidates(tmp_path: Path) -> None:
    for name, candidates in (("shared", None), ("per_edge", few_weights_candidates())):
        network = SearchNetwork(2, 3, 3, in_channels=1, candidate_ops=candidates)
        weights = {cell: value.numpy() for cell, value in network.arch_weights().items()}
        assert is_png(plot_arch_weights(weights, network.candidates, tmp_path / f"{name}.png", title="epoch 0"))


class FakeWandb:
    """What publish_to_loggers uses of a W&B logger: ``log_image`` and ``log_text``."""

    def __init__(self) -> None:
        self.images: dict[str, list] = {}
        self.texts: dict[str, list] = {}

    def log_image(self, key, images, step=None):
        self.images[key] = images

    def log_text(self, key, columns=None, data=None, step=None):
        self.texts[key] = data


def test_pictures_reach_image_loggers_and_csv_is_skipped(tmp_path: Path) -> None:
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    network = SearchNetwork(2, 3, 3, in_channels=1)
    genotype = network.genotype()
    files = write_search_pictures(network, genotype, tmp_path / "epoch_000", "epoch 0")
    assert {path.name for path in files.values()} == {"genotype.txt", "arch_weights.png", "normal_cell.png",
                                                      "reduction_cell.png"}
    wandb, tensorboard = FakeWandb(), TensorBoardLogger(tmp_path, name="tb", version="")
    sent = publish_to_loggers([CSVLogger(tmp_path), wandb, tensorboard], files, genotype_text(genotype), step=3)
    assert set(wandb.images) == {"search/arch_weights", "search/normal_cell", "search/reduction_cell"}
    assert "node 0" in wandb.texts["search/genotype"][0][0]
    assert "TensorBoardLogger:normal_cell" in sent and not any(item.startswith("CSVLogger") for item in sent)
    tensorboard.experiment.flush()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert not (tmp_path / "epoch_000" / "genotype.txt").read_text().startswith(" ")
    assert np.isfinite(network.arch_weights()["normal"].numpy()).all()
