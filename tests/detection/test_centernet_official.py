"""The official CenterNet checkpoints (Duankaiwen/CenterNet) load into the suite and compute the official function.

Each golden file (``tests/fixtures/golden/centernet{52,104}.pt``) holds what the official model computed with the
weights :func:`tests.golden.golden_state_dict` rebuilds: its training forward ``kp._train`` in eval mode on one
128x128 image, every stack's raw heatmaps and its embeddings / offsets gathered at given indices. Here the
weights are written as the official ``.pkl`` (the state dict with ``module.`` on every key), read and converted
by the converter users get (``CenterNetDetector.official_format``), and the suite network's raw maps, gathered
as the official ``_tranpose_and_gather_feat`` does, are compared with the golden outputs.

The official network reads BGR images (OpenCV), the suite's RGB: the converter reverses the stem's input
channels, so the suite network is given the golden image with its channels reversed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from datamodules.writers.coco import write_tiny_coco
from lightning_modules.centernet import CenterNetDetector
from networks.detection.centernet import centernet52, centernet104
from networks.detection.official import FIRST_CONV, STACKS_ADVICE, official_key_to_suite
from tests.detection.weights_probe import state_digest
from tests.golden import golden_state_dict, load_golden, max_abs_difference, write_official_file
from tests.helpers import run_cli
from visionsuite.official_weights import (
    OfficialWeightsError,
    convert_state_dict,
    load_converted,
    load_file,
    read_official_weights,
)
from visionsuite.pipeline import run_job

#: golden file -> (preset, stacks, tolerance of the golden README, official file name)
GOLDEN = {
    "centernet52": (centernet52, 1, 1e-4, "CenterNet-52_480000.pkl"),
    "centernet104": (centernet104, 2, 5e-4, "CenterNet-104_480000.pkl"),
}
#: The 80 category ids of COCO (1..90 without the ten unused ones), as instances_val2017.json lists them.
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
QUIET = ["logger=csv", "~callbacks.progress_bar", "~callbacks.model_summary"]
PROBE = "+callbacks.weights_probe._target_=tests.detection.weights_probe.NetworkDigest"


@pytest.fixture(scope="module")
def official_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """``official_file(golden name)``: the golden weights written as the official checkpoint (once per module)."""
    folder = tmp_path_factory.mktemp("official")
    written: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in written:
            state = golden_state_dict(load_golden(name)["keys"])
            written[name] = write_official_file(folder / GOLDEN[name][3], state, "module")
        return written[name]

    yield make
    for path in written.values():
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def coco_val2017(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 64x80 image with two boxes, COCO's 80 category ids, as ``annotations/instances_val2017.json``."""
    return write_tiny_coco(tmp_path_factory.mktemp("coco") / "coco", splits=("val2017",), num_images=1,
                           category_ids=COCO_CATEGORY_IDS)


def coco_overrides(root: Path) -> list[str]:
    """Evaluate on ``root``'s val2017 (its categories read from the same file: no train2017 on disk)."""
    return [f"data.data_dir={root}", "data.train_split=val2017", "data.num_workers=0", "data.pin_memory=false"]


def gather(maps: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``_tranpose_and_gather_feat`` of the official kp_utils.py: ``(N, C, H, W)`` maps at flat indices
    ``y * W + x`` ``(N, K)`` -> ``(N, K, C)``."""
    batch, channels = maps.shape[:2]
    flat = maps.permute(0, 2, 3, 1).reshape(batch, -1, channels)
    return flat.gather(1, indices.unsqueeze(2).expand(-1, -1, channels))


def official_training_outputs(net: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What ``kp._train`` returns, named as the golden file: every stack's raw maps, gathered at the indices."""
    net.eval()
    with torch.no_grad():
        stacks = net(inputs["image"].flip(1), all_stacks=True)  # the official BGR input, as RGB
    outputs = {}
    for index, maps in enumerate(stacks):
        for kind in ("tl", "br", "ct"):
            outputs[f"stack{index}.{kind}_heat"] = maps[f"{kind}_heatmap"]
            outputs[f"stack{index}.{kind}_regr"] = gather(maps[f"{kind}_offset"], inputs[f"{kind}_inds"])
        for kind in ("tl", "br"):
            outputs[f"stack{index}.{kind}_tag"] = gather(maps[f"{kind}_embedding"], inputs[f"{kind}_inds"])
    return outputs


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_official_checkpoint_computes_the_official_outputs(official_file: Callable[[str], Path],
                                                               name: str) -> None:
    preset, stacks, tolerance, file_name = GOLDEN[name]
    golden = load_golden(name)
    path = official_file(name)
    assert all(key.startswith("module.") for key in load_file(path))  # the official DataParallel-style file
    started = time.perf_counter()
    module = CenterNetDetector(num_classes=80, net=preset())
    official_format = module.official_format()
    assert official_format.network is module.net
    assert f"CenterNet-{file_name.split('-')[1].split('_')[0]}" in official_format.description
    official = read_official_weights(path)
    load_converted(official_format.network, official, official_format.convert_key, source=path,
                   description=official_format.description)
    net = module.net
    # A few entries by name: the stem (input channels reversed: BGR -> RGB), an inner hourglass block, the last
    # stack's center pooling and heatmap head.
    last = stacks - 1
    assert torch.equal(net.backbone.stem[0][0].weight, official[FIRST_CONV].flip(1))
    assert torch.equal(net.backbone.hourglasses[last].inner.inner.down[0].skip[0].weight,
                       official[f"kps.{last}.low2.low2.low1.0.skip.0.weight"])
    assert torch.equal(net.heads[last].ct_pool.row_conv[1].running_var,
                       official[f"ct_cnvs.{last}.p2_conv1.bn.running_var"])
    assert torch.equal(net.heads[last].heatmaps["ct"][2].bias, official[f"ct_heats.{last}.1.bias"])

    outputs = official_training_outputs(net, golden["inputs"])
    assert set(outputs) == set(golden["outputs"])
    differences = {key: max_abs_difference(outputs[key], golden["outputs"][key]) for key in golden["outputs"]}
    print(f"{name}: max abs differences {json.dumps({k: f'{v:.2e}' for k, v in differences.items()})}; "
          f"convert + forward {time.perf_counter() - started:.1f} s")
    assert max(differences.values()) <= tolerance, differences


def test_the_official_checkpoint_of_another_network_is_refused_naming_file_and_key(
        official_file: Callable[[str], Path], coco_val2017: Path, make_config) -> None:
    path = official_file("centernet52")
    cfg = make_config("experiment=centernet104_coco", "trainer=cpu", "mode=test", f"ckpt_path={path}",
                      *coco_overrides(coco_val2017))
    with pytest.raises(OfficialWeightsError) as caught:
        run_job(cfg, announce=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path} does not fit CenterNet as CenterNet-104 ")
    # The 52 file has one stack: the 104 network's second hourglass gets nothing.
    assert "get no official weight, first `backbone.hourglasses.1.upper.0.conv1.weight`" in message
    # What to do, for a key that only a network of more stacks has (either side); none for the others.
    advise = official_key_to_suite.advise
    assert advise("backbone.hourglasses.1.upper.0.conv1.weight") == STACKS_ADVICE
    assert advise("kps.1.up1.0.conv1.weight") == advise("inters_.0.0.weight") == STACKS_ADVICE
    assert advise("backbone.hourglasses.0.upper.0.conv1.weight") is None and advise("tl_heats.0.1.bias") is None


def test_run_py_evaluates_the_official_centernet52(official_file: Callable[[str], Path], coco_val2017: Path,
                                                   tmp_path: Path) -> None:
    path = official_file("centernet52")
    digest = tmp_path / "digest.json"
    done = run_cli("experiment=centernet52_coco", "mode=test", f"ckpt_path={path}", "trainer=cpu",
                   *coco_overrides(coco_val2017), *QUIET, PROBE, f"+callbacks.weights_probe.path={digest}",
                   cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = sorted((tmp_path / "logs" / "centernet52_coco" / "runs").iterdir())
    result = json.loads((run_dir / "result.json").read_text())
    for metric in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
        assert 0.0 <= result["metrics"][f"test/{metric}"] <= 1.0
    assert result["notes"]["start weights"] == (
        f"official CenterNet-52 (Duankaiwen/CenterNet models/CenterNet-52.py), converted from {path}")
    # The network evaluated holds exactly the official weights, converted.
    converted = dict(official_key_to_suite(key, tensor) for key, tensor in read_official_weights(path).items())
    assert json.loads(digest.read_text()) == state_digest(converted)


@pytest.mark.slow  # about 26 s and 3 GB on 2 CPU cores: the 840 MB file written and read, 210M parameters
def test_the_official_centernet104_through_the_pipeline(official_file: Callable[[str], Path], coco_val2017: Path,
                                                        make_config, tmp_path: Path) -> None:
    path = official_file("centernet104")
    digest = tmp_path / "digest.json"
    cfg = make_config("experiment=centernet104_coco", "trainer=cpu", "mode=test", f"ckpt_path={path}",
                      *coco_overrides(coco_val2017), PROBE, f"+callbacks.weights_probe.path={digest}")
    result = run_job(cfg, announce=False)
    assert {f"test/{metric}" for metric in ("AP", "AP50", "AP75", "APs", "APm", "APl")} <= set(result["metrics"])
    assert result["notes"]["start weights"].startswith("official CenterNet-104 (Duankaiwen/CenterNet models/")
    official = read_official_weights(path)
    assert json.loads(digest.read_text()) == state_digest(
        dict(official_key_to_suite(key, tensor) for key, tensor in official.items()))
    # The other way round: the 104 file into CenterNet-52 names the first official key without a place.
    with pytest.raises(OfficialWeightsError, match=r"no place in the network, first `kps\.1\.up1\.0\.conv1\.weight`"):
        convert_state_dict(official, centernet52(), official_key_to_suite, source=path)
