"""The official SAKE files through run.py, at full network size (CSE-ResNet-50, 224 x 224) on tiny written data.

* ``experiment=sake_sketchy model.net.weights_path=se_resnet50-ce0d4300.pth``: the ImageNet file as downloaded
  starts the teacher and the student;
* ``experiment=sake_sketchy mode=test ckpt_path=model_best.pth.tar``: SAKE's released student is evaluated;
* a checkpoint of another network given as ``ckpt_path`` stops with one error naming its first key.

The files are the golden state dicts (``tests/golden.py``) written in the official formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.writers.sketch_photo import write_official_semantic_mask, write_sketch_photo_dataset
from networks.sbir.official import SE_RESNET50_FILE
from tests.golden import golden_state_dict, load_golden, write_official_file
from tests.helpers import run_cli

QUIET = ["logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary"]
SKETCHY = {"sketch_dir": "256x256/sketch/tx_000000000000_ready", "photo_dir": "EXTEND_image_sketchy"}
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
#: 100 seen classes as in the official checkpoint (the writer draws star<n> for any n), 2 unseen.
HUNDRED_AND_TWO = [f"star{points}" for points in range(3, 105)]


@pytest.fixture(scope="module")
def official_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("official")
    imagenet = golden_state_dict(load_golden("sake_se_resnet50_imagenet")["keys"])
    student = golden_state_dict(load_golden("sake_cse_resnet50_sketchy")["keys"])
    return {"imagenet": write_official_file(folder / SE_RESNET50_FILE, imagenet),
            "model_best": write_official_file(folder / "model_best.pth.tar", student, "training")}


@pytest.fixture(scope="module")
def hundred_class_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sketchy layout, one 16-pixel sketch and photo per class; star3 and star4 unseen (zeroshot1)."""
    data_dir = tmp_path_factory.mktemp("data")
    root = write_sketch_photo_dataset(data_dir / "Sketchy", HUNDRED_AND_TWO, 1, 1, image_size=16, **SKETCHY)
    (root / "zeroshot1").mkdir()
    (root / "zeroshot1" / "unseen_classes.txt").write_text("star3\nstar4\n")
    return data_dir


def _result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


@pytest.mark.slow
def test_the_imagenet_file_as_downloaded_starts_teacher_and_student(tmp_path: Path,
                                                                    official_files: dict[str, Path]) -> None:
    classes = ("triangle", "square", "circle")
    root = write_sketch_photo_dataset(tmp_path / "data" / "Sketchy", classes, 2, 2, image_size=32, **SKETCHY)
    (root / "zeroshot1").mkdir()
    (root / "zeroshot1" / "unseen_classes.txt").write_text("circle\n")
    write_official_semantic_mask(root / "zeroshot1", classes, np.random.default_rng(0).random((3, 1000)) * 0.5)
    done = run_cli("experiment=sake_sketchy", f"paths.data_dir={tmp_path / 'data'}", *QUIET,
                   f"model.net.weights_path={official_files['imagenet']}", "data.num_classes=2",
                   "data.batch_size=3", "data.num_workers=0", "data.eval_batch_size=4", "trainer.max_epochs=1",
                   cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = sorted((tmp_path / "logs" / "sake_sketchy" / "runs").iterdir())
    result = _result(run_dir)
    assert 0 <= result["metrics"]["test/mAP_all"] <= 1 and result["metrics"]["train/kd"] > 0
    imagenet = torch.load(official_files["imagenet"], weights_only=True)
    weights = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    # The frozen teacher is the ImageNet file, converted: SE 1x1 convolutions as linear layers, zero tag column.
    assert torch.equal(weights["teacher.layer0.conv1.weight"], imagenet["layer0.conv1.weight"])
    assert torch.equal(weights["teacher.last_linear.weight"], imagenet["last_linear.weight"])
    fc2 = weights["teacher.layer3.5.se_module.fc2.weight"]
    assert torch.equal(fc2[:, :-1], imagenet["layer3.5.se_module.fc2.weight"].flatten(1)) and not fc2[:, -1].any()
    assert not any(name.startswith("net.last_linear") for name in weights)  # the student has no 2048 -> 1000 layer


def test_model_best_is_evaluated_with_mode_test(tmp_path: Path, official_files: dict[str, Path],
                                                hundred_class_data: Path) -> None:
    done = run_cli("experiment=sake_sketchy", "mode=test", f"ckpt_path={official_files['model_best']}",
                   f"paths.data_dir={hundred_class_data}", *QUIET, "model.semantic_mask_path=null",
                   "data.num_workers=0", cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = sorted((tmp_path / "logs" / "sake_sketchy" / "runs").iterdir())
    result = _result(run_dir)
    assert "official SAKE student" in result["notes"]["start weights"]
    assert 0 < result["metrics"]["test/mAP_all"] <= 1
    # Two photos in the gallery, one relevant to each sketch: Prec@100 divides by min(100, 2) as the official script.
    assert result["metrics"]["test/prec_100"] == pytest.approx(0.5)


def test_a_checkpoint_of_another_network_stops_with_one_error(tmp_path: Path, official_files: dict[str, Path],
                                                              hundred_class_data: Path) -> None:
    done = run_cli("experiment=sake_sketchy", "mode=test", f"ckpt_path={official_files['imagenet']}",
                   f"paths.data_dir={hundred_class_data}", *QUIET, "model.semantic_mask_path=null",
                   cwd=tmp_path, env=ONE_THREAD)
    assert done.returncode == 2
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and SE_RESNET50_FILE in error[0] and "first `layer0.conv1.weight`" in error[0]
    assert "first `net.layer0.conv1.weight`" in error[0] and "Traceback" not in done.stderr
