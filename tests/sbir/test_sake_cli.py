"""SAKE end to end through run.py: the demo chain at test size, mode=predict, and the benchmark configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from datamodules.writers.sketch_photo import write_official_semantic_mask, write_sketch_photo_dataset
from tests.helpers import run_cli

QUIET = ["logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary"]
TINY = ["data.sketches_per_class=6", "data.photos_per_class=6", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def _result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def test_demo_chain_with_and_without_sake_then_predict(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = run_cli("experiment=sake_demo", f"paths.data_dir={data_dir}", *QUIET, *TINY, cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = sorted((tmp_path / "logs" / "sake_demo" / "runs").iterdir())
    with_sake, without_sake = _result(run_dir / "sake"), _result(run_dir / "without_sake")
    for result in (with_sake, without_sake):
        for name in ("test/mAP_all", "test/prec_100", "test/mAP_all_per_class", "test/hash_mAP_all", "val/mAP_all"):
            assert 0.0 <= result["metrics"][name] <= 1.0
    assert with_sake["metrics"]["train/kd"] > 0 and without_sake["metrics"]["train/kd"] == 0
    teacher_checkpoint = _result(run_dir / "teacher")["artifacts"]["last_checkpoint"]

    sketches = data_dir / "sbir_demo" / "sketch" / "hexagon"
    done = run_cli("experiment=sake_demo_student", f"paths.data_dir={data_dir}", *QUIET, "mode=predict",
                   "data.sketches_per_class=6", "data.photos_per_class=6",
                   f"ckpt_path={with_sake['artifacts']['last_checkpoint']}",
                   f"model.teacher_checkpoint={teacher_checkpoint}", f"data.predict_dir={sketches}",
                   cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    (predict_dir,) = sorted((tmp_path / "logs" / "sake_demo_student" / "runs").iterdir())
    pictures = sorted((predict_dir / "retrievals").glob("*_top10.png"))
    assert len(pictures) == 6
    listing = json.loads((predict_dir / "retrievals" / "retrievals.json").read_text())
    assert len(listing[0]["photos"]) == 10 and set(listing[0]["classes"]) <= {"diamond", "ellipse", "hexagon", "star6"}


def test_semantic_mask_of_the_wrong_shape_stops_the_run(tmp_path: Path) -> None:
    mask = tmp_path / "mask.npy"
    np.save(mask, np.zeros((16, 1000), dtype=np.float32))
    done = run_cli("experiment=sake_demo_student", f"paths.data_dir={tmp_path / 'data'}", *QUIET, *TINY,
                   f"model.semantic_mask_path={mask}", cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode != 0
    assert "has shape (16, 1000), expected (16, 12)" in done.stderr + done.stdout


@pytest.mark.parametrize(("experiment", "layout", "seen", "sketch_fraction"), [
    ("sake_sketchy", ("Sketchy", "256x256/sketch/tx_000000000000_ready", "EXTEND_image_sketchy"), 100, 1 / 3),
    ("sake_sketchy_split2", ("Sketchy", "256x256/sketch/tx_000000000000_ready", "EXTEND_image_sketchy"), 104, 1 / 3),
    ("sake_tuberlin", ("TUBerlin", "png_ready", "ImageResized_ready"), 220, 1 / 10),
])
def test_benchmark_experiments_read_their_layouts(make_config, tmp_path: Path, experiment: str,
                                                  layout: tuple[str, str, str], seen: int,
                                                  sketch_fraction: float) -> None:
    cfg = make_config(f"experiment={experiment}", "model.loss.sake_lambda=0", "model.heads.embedding_dim=512")
    assert cfg.model.num_classes == cfg.model.heads.num_classes == seen
    assert cfg.data.sketch_fraction == pytest.approx(sketch_fraction, abs=1e-6)
    assert (cfg.model.loss.sake_lambda, cfg.model.heads.embedding_dim, cfg.model.loss.lambda_sem) == (0, 512, 0.3)
    assert cfg.model.optimizer.lr == 1e-4 and cfg.trainer.max_epochs == 20 and cfg.data.batch_size == 40
    assert (cfg.monitor, cfg.monitor_mode, cfg.test_ckpt) == ("val/mAP_all", "max", "last")
    if experiment == "sake_sketchy_split2":
        assert list(cfg.model.metric.map_tops) == [200] and 200 in cfg.model.metric.precision_ks
    folder, sketch_dir, photo_dir = layout
    root = tmp_path / "data" / folder
    write_sketch_photo_dataset(root, ("triangle", "square", "circle"), 2, 2, image_size=16, sketch_dir=sketch_dir,
                               photo_dir=photo_dir)
    datamodule = instantiate(cfg.data, unseen_classes=1, num_classes=2)
    datamodule.check_data()
    assert len(datamodule.split.unseen) == 1 and datamodule.num_classes == 2
    assert cfg.model.semantic_mask_path == str(root / cfg.data.split_dir / "cid_mask.pickle")  # the official mask


def test_an_official_mask_of_another_split_stops_the_run(tmp_path: Path) -> None:
    """The official cid_mask.pickle format through run.py: a file lacking the seen classes is one clear error."""
    mask = write_official_semantic_mask(tmp_path / "other_split", ["triangle", "square"], np.ones((2, 12)))
    done = run_cli("experiment=sake_demo_student", f"paths.data_dir={tmp_path / 'data'}", *QUIET, *TINY,
                   f"model.semantic_mask_path={mask}", cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode != 0
    assert "has no row for the seen class(es)" in done.stderr + done.stdout
