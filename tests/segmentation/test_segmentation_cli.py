"""End to end through run.py at test size: train + test, mode=predict writing NIfTI, mode=summary, bad data."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.helpers import run_cli
from tests.test_benchmarks import run_benchmark

QUIET = ["logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary"]
TINY = ["data.num_cases=5", "data.volume_shape=[24,24,12]", "data.num_test_images=1", "data.crop_size=[24,24]",
        "data.samples_per_epoch=8", "data.batch_size=4", "data.val_fraction=0.2", "data.test_fraction=0.2",
        "trainer.max_epochs=1", "model.num_visualized=1"]
ENV = {"OMP_NUM_THREADS": "1"}


def _run_dirs(cwd: Path, task: str) -> list[Path]:
    return sorted((cwd / "logs" / task / "runs").iterdir())


def test_thickened_demo_trains_tests_and_predicts_nifti(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = run_cli("experiment=thickened2d_demo", f"paths.data_dir={data_dir}", *QUIET, *TINY, cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path, "thickened2d_demo")
    result = json.loads((run_dir / "result.json").read_text())
    metrics = result["metrics"]
    for stage in ("val", "test"):
        for name in ("dice_mean", "dice_vessel", "dice_tumour"):
            assert 0.0 <= metrics[f"{stage}/{name}"] <= 1.0
    table = json.loads((run_dir / "dice_per_case.json").read_text())
    assert len(table) == 1 and set(table[0]) == {"case_id", "vessel", "tumour"}
    assert f"test/dice/{table[0]['case_id']}/vessel" in metrics  # the per-case table is in result.json too
    assert len(list((run_dir / "visualizations").glob("val_*.png"))) == 1  # one per validation

    images = data_dir / "synthetic_vessels" / "imagesTs"
    done = run_cli("experiment=thickened2d_demo", f"paths.data_dir={data_dir}", *QUIET, *TINY, "mode=predict",
                   f"ckpt_path={result['artifacts']['last_checkpoint']}", f"data.predict_dir={images}",
                   cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    predictions = _run_dirs(tmp_path, "thickened2d_demo")[-1] / "predictions"
    (source,) = sorted(images.glob("*.nii.gz"))
    written = nib.load(str(predictions / source.name))
    original = nib.load(str(source))
    assert written.shape == original.shape and np.allclose(written.affine, original.affine)
    assert written.header.get_zooms() == original.header.get_zooms()
    assert written.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(written.dataobj))) <= {0, 1, 2}
    assert (predictions / source.name.replace(".nii.gz", ".png")).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["plain2d_demo", "unet3d_demo", "dynunet3d_demo"])
def test_baselines_train_on_the_same_data(tmp_path: Path, experiment: str) -> None:
    sizes = ["data.patch_size=[16,16,8]", "data.batch_size=2"] if "3d" in experiment else []
    done = run_cli(f"experiment={experiment}", f"paths.data_dir={tmp_path / 'data'}", *QUIET, *TINY, *sizes,
                   cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = _run_dirs(tmp_path, experiment)
    assert "test/dice_vessel" in json.loads((run_dir / "result.json").read_text())["metrics"]


def test_summary_and_a_missing_dataset(tmp_path: Path) -> None:
    done = run_cli("experiment=thickened2d_demo", "mode=summary", *QUIET, cwd=tmp_path, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["params_m"] > 0 and report["madds_m"] > 0 and report["input_size"] == 64

    done = run_cli("experiment=thickened2d_msd_hepatic_vessel", f"paths.data_dir={tmp_path / 'nothing'}", *QUIET,
                   cwd=tmp_path, env=ENV)
    assert done.returncode == 2 and "Task08_HepaticVessel does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_loading_benchmark_prints_its_json() -> None:
    report = run_benchmark("volume_loading.py", "--cases", "1", "--shape", "24", "24", "12", "--samples", "4",
                           "--crop", "16", "16")
    assert report["cached"]["samples_per_s"] > 0 and report["read_per_sample"]["samples_per_s"] > 0


@pytest.mark.slow  # four fresh processes (peak memory of each network on its own)
def test_inference_benchmark_prints_its_json(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "unet3d_demo" / "runs" / "2026-12-06_00-00-00"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"metrics": {"test/dice_vessel": 0.5, "test/dice/case/vessel": 0.4}}))
    report = run_benchmark("volume_inference.py", "--size", "16", "16", "6", "--device", "cpu", "--repeats", "1",
                           "--channels", "4", "8", "--channels-3d", "4", "8", "--patch-size", "8", "8", "4",
                           "--dynunet-patch-size", "16", "16", "8", "--dynunet-spacing", "1", "1", "1",
                           "--dynunet-channels", "4", "8", "--demo-runs", str(tmp_path / "logs"))
    assert set(report["networks"]) == {"thickened2d", "plain2d", "unet3d", "dynunet3d"}
    assert report["demo_test_dice"] == {"unet3d_demo": {"test/dice_vessel": 0.5}}
    assert report["volume_size"] == [16, 16, 6] and report["time_vs_thickened2d"]["thickened2d"] == 1.0
