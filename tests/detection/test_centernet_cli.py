"""End to end through run.py: the shapes experiment (tiny), mode=predict, mode=summary and a bad dataset."""

from __future__ import annotations

import json
from pathlib import Path

from datamodules.writers.coco import write_tiny_coco
from tests.helpers import run_cli

QUIET = ["logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary"]
TINY = [
    "data.num_train=24",
    "data.num_val=6",
    "data.eval_batch_size=3",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "model.num_visualized=2",
]


def _run_dirs(cwd: Path, task: str) -> list[Path]:
    return sorted((cwd / "logs" / task / "runs").iterdir())


def test_shapes_experiment_trains_then_predicts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = run_cli(
        "experiment=centernet_shapes",
        f"paths.data_dir={data_dir}",
        *QUIET,
        *TINY,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path, "centernet_shapes")
    result = json.loads((run_dir / "result.json").read_text())
    for stage in ("val", "test"):
        for name in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
            assert f"{stage}/{name}" in result["metrics"]
    assert (data_dir / "shapes" / "annotations" / "instances_val.json").is_file()  # generated on first use
    assert len(list((run_dir / "visualizations").glob("val_*.png"))) == 2  # one per validation
    assert json.loads((run_dir / "categories.json").read_text())[2] == {"id": 3, "name": "triangle"}
    checkpoint = result["artifacts"]["last_checkpoint"]

    images = data_dir / "shapes" / "val"
    done = run_cli(
        "experiment=centernet_shapes",
        f"paths.data_dir={data_dir}",
        *QUIET,
        "data.num_train=24",
        "data.num_val=6",
        "mode=predict",
        f"ckpt_path={checkpoint}",
        f"data.predict_dir={images}",
        "model.decoder.flip=false",
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    predict_dir = _run_dirs(tmp_path, "centernet_shapes")[-1] / "predictions"
    detections = json.loads((predict_dir / "detections.json").read_text())
    listing = json.loads((predict_dir / "images.json").read_text())
    assert [image["file_name"] for image in listing["images"]] == sorted(p.name for p in images.iterdir())
    assert [c["id"] for c in listing["categories"]] == [1, 2, 3]
    assert len(list(predict_dir.glob("*.png"))) == 6
    for record in detections:
        assert set(record) == {"image_id", "category_id", "bbox", "score", "keypoints"}
        assert record["category_id"] in (1, 2, 3)
        assert set(record["keypoints"]) == {"top_left", "bottom_right", "center"}


def test_summary_and_a_bad_dataset(tmp_path: Path) -> None:
    done = run_cli(
        "experiment=centernet_shapes", "mode=summary", *QUIET, cwd=tmp_path, env={"OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["stacks"] == 1 and 0.5 < report["params_m"] < 1 and report["madds_g"] > 0

    root = write_tiny_coco(tmp_path / "coco", num_images=2)
    (root / "train" / "000000000001.png").unlink()
    done = run_cli(
        "experiment=centernet_shapes",
        "data=coco",
        f"data.data_dir={root}",
        "data.train_split=train",
        "data.val_split=val",
        "data.num_workers=0",
        "data.num_classes=3",
        *QUIET,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 2
    assert "image file(s) listed in" in done.stderr and "000000000001.png" in done.stderr
    assert "Traceback" not in done.stderr
