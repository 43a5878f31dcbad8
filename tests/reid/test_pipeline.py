"""MCNL / triplet through the pipeline run.py uses, at test size: train, mode=test, mode=predict, Market format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datamodules.writers.market1501 import (
    market1501_file_name,
    write_market1501_folder,
    write_tiny_market1501,
)
from visionsuite.pipeline import run_job

TINY_DEMO = [
    "data.generation.train_identities=16",
    "data.generation.train_images=3",
    "data.generation.test_identities=6",
    "data.generation.distractors=2",
    "data.generation.junk=1",
    "data.val_identities=2",
    "data.batch_size=8",            # 1 identity x 4 cameras x 2 images
    "data.images_per_identity=2",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
]


@pytest.fixture(scope="module")
def trained_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.helpers import compose_config

    root = tmp_path_factory.mktemp("mcnl_demo")
    result = run_job(compose_config(["experiment=mcnl_demo", *TINY_DEMO], root / "run", data_dir=root / "data"))
    return {"root": root, "run": root / "run", "result": result}


def test_demo_trains_validates_tests_and_draws(trained_demo: dict) -> None:
    run, result = trained_demo["run"], trained_demo["result"]
    metrics = result["metrics"]
    for name in ("train/loss_epoch", "val/rank1", "val/mAP", "test/rank1", "test/rank5", "test/rank10", "test/mAP"):
        assert name in metrics, name
    assert 0.0 <= metrics["test/rank1"] <= metrics["test/rank10"] <= 1.0
    assert (run / "retrieval" / "test.png").is_file()
    assert (run / "retrieval" / "val_epoch000.png").is_file()
    assert json.loads((run / "result.json").read_text())["artifacts"]["retrieval_test"].endswith("test.png")
    generated = run.parent / "data" / "reid_demo"
    assert (generated / "reid_demo.json").is_file() and any((generated / "bounding_box_train").glob("*_c*s1_*.jpg"))


def test_mode_test_and_predict_from_the_checkpoint(trained_demo: dict, make_config) -> None:
    root = trained_demo["root"]
    checkpoint = root / "run" / "checkpoints" / "last.ckpt"
    data = ["paths.data_dir=" + str(root / "data")]
    tested = run_job(make_config("experiment=mcnl_demo", *TINY_DEMO, *data, "mode=test", f"ckpt_path={checkpoint}",
                                 output_dir=root / "eval"))
    assert tested["metrics"]["test/mAP"] == pytest.approx(trained_demo["result"]["metrics"]["test/mAP"], abs=1e-6)
    query = sorted((root / "data" / "reid_demo" / "query").glob("*.jpg"))[0].name
    run_job(make_config("experiment=mcnl_demo", *TINY_DEMO, *data, "mode=predict", f"ckpt_path={checkpoint}",
                        f"data.predict_queries=[{query}]", output_dir=root / "predict"))
    rankings = json.loads((root / "predict" / "retrieval" / "rankings.json").read_text())
    assert [entry["query"] for entry in rankings["queries"]] == [query]
    assert len(rankings["queries"][0]["ranked_gallery"]) == 10
    assert (root / "predict" / "retrieval" / "predict.png").is_file()


def test_market_layout_sct_and_full_with_absent_query_identity(make_config, tmp_path: Path) -> None:
    data_dir = write_tiny_market1501(tmp_path / "market1501", train_identities=tuple(range(1, 9)), num_cameras=4)
    grey = np.full((32, 16, 3), 128, dtype=np.uint8)
    write_market1501_folder(data_dir, "query", [(50, 0, grey)])  # identity 50: not in the gallery
    common = ["model=reid_reduced_resnet", f"data.data_dir={data_dir}", "data.height=32", "data.width=16",
              "data.num_workers=0", "data.pin_memory=false", "data.batch_size=8", "data.images_per_identity=2",
              "data.eval_batch_size=64", "trainer.max_epochs=1"]
    with pytest.warns(UserWarning, match="1 of 13 queries have no correct match") as caught:
        sct = run_job(make_config("experiment=mcnl_market_sct", *common, output_dir=tmp_path / "sct"))
    assert "test/mAP" in sct["metrics"]
    # no validation split (the paper's protocol): no checkpoint selected by val/mAP, the last one is tested
    assert "best_checkpoint" not in sct["artifacts"] and Path(sct["artifacts"]["last_checkpoint"]).is_file()
    assert sct["notes"]["tested checkpoint"].startswith("last")
    assert not any("monitored key" in str(warning.message) for warning in caught)
    with pytest.warns(UserWarning, match="queries have no correct match"):
        full = run_job(make_config("experiment=triplet_market_full", *common, output_dir=tmp_path / "full"))
    assert "test/rank1" in full["metrics"]
    assert market1501_file_name(50, 0, frame=1) in {p.name for p in (data_dir / "query").iterdir()}

