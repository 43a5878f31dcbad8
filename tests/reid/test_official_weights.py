"""Official MCNL checkpoints (FlyHighest/Single-Camera-Training-ReID): the golden outputs through the users'
converter, ``run.py ... mode=test ckpt_path=<official file>`` on a Market-1501-format folder, and the errors."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.nn import functional as F  # noqa: N812
from torchvision.models import resnet50

from datamodules.writers.market1501 import write_tiny_market1501
from lightning_modules.reid import ReIDModule
from metrics.reid import ReIDEvaluator
from networks.reid.embedding import ReIDEmbedding, reduced_resnet_trunk, resnet50_trunk
from networks.reid.losses import MCNLLoss
from networks.reid.official import convert_official_key
from tests.golden import golden_state_dict, load_golden, max_abs_difference
from tests.helpers import run_cli
from visionsuite.instantiate import build
from visionsuite.official_weights import (
    OfficialWeightsError,
    convert_state_dict,
    load_converted,
    read_official_weights,
)
from visionsuite.pipeline import run_job

GOLDEN_TOLERANCE = 1e-5  # the golden notes: float32 vs float64 of the official model reaches 5.7e-6 on `features`
GOLDEN_OUTPUTS = ("features", "features_flip", "eval_features", "eval_features_l2")


def official_state() -> dict[str, torch.Tensor]:
    """The official MCNL model's state dict with the golden weights (``base.`` + ResNet-50 names)."""
    return dict(_golden_weights())


@lru_cache(maxsize=1)
def _golden_weights() -> dict[str, torch.Tensor]:
    return golden_state_dict(load_golden("mcnl_resnet50")["keys"])


def write_official_checkpoint(folder: Path, state: dict[str, torch.Tensor], *, data_parallel: bool = False,
                              epoch: int = 200) -> Path:
    """What main_reid.py saves (utils/serialization.py save_checkpoint): ``{'state_dict', 'epoch'}`` in
    ``<save_dir>/N_checkpoint_epN.pth.tar``; on one GPU the model is an ``nn.DataParallel`` (``module.`` keys)."""
    if data_parallel:
        state = {f"module.{name}": tensor for name, tensor in state.items()}
    path = folder / f"{epoch}_checkpoint_ep{epoch}.pth.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": epoch}, path)
    return path


def reference_features(images: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """The official test feature computed without the suite's network or converter: torchvision's ResNet-50 (the
    official models/utils/resnet.py layout) with the ``base.`` prefix stripped, last stride 1, average pooling over
    the map, image + flipped image summed, L2-normalised (framework/evaluators/frame_evaluator.py)."""
    model = resnet50(weights=None)
    missing, unexpected = model.load_state_dict({name[len("base."):]: value for name, value in state.items()},
                                                strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and not unexpected
    model.layer4[0].conv2.stride = (1, 1)
    model.layer4[0].downsample[0].stride = (1, 1)
    trunk = torch.nn.Sequential(*list(model.children())[:-2]).eval()

    def pooled(batch: torch.Tensor) -> torch.Tensor:
        maps = trunk(batch)
        return F.avg_pool2d(maps, maps.shape[2:]).flatten(1)

    with torch.no_grad():
        summed = pooled(images) + pooled(images.index_select(3, torch.arange(images.size(3) - 1, -1, -1)))
    return summed / summed.norm(p=2, dim=1, keepdim=True)


def test_the_converted_official_checkpoint_gives_the_golden_outputs(tmp_path: Path, make_config) -> None:
    golden = load_golden("mcnl_resnet50")
    path = write_official_checkpoint(tmp_path / "market_sct_mcnl", official_state())
    module = build(make_config("experiment=mcnl_market_sct").model, "model").eval()
    official_format = module.official_format()
    load_converted(official_format.network, read_official_weights(path), official_format.convert_key, source=path,
                   description=official_format.description)
    images = golden["inputs"]
    with torch.no_grad():
        outputs = {"features": module(images), "features_flip": module(torch.flip(images, dims=[3]))}
        outputs["eval_features"] = outputs["features"] + outputs["features_flip"]
        outputs["eval_features_l2"] = module.test_features(images)  # what the suite ranks with
    assert set(golden["outputs"]) == set(GOLDEN_OUTPUTS)
    differences = {name: max_abs_difference(outputs[name], golden["outputs"][name]) for name in GOLDEN_OUTPUTS}
    print("max abs difference to the official outputs:", differences)
    assert max(differences.values()) <= GOLDEN_TOLERANCE, differences


def test_one_gpu_and_two_gpu_checkpoints_convert_to_the_same_weights(tmp_path: Path) -> None:
    state = official_state()
    embedding = ReIDEmbedding(resnet50_trunk(last_stride=1))
    plain = read_official_weights(write_official_checkpoint(tmp_path / "two_gpus", state))
    wrapped = read_official_weights(write_official_checkpoint(tmp_path / "one_gpu", state, data_parallel=True))
    assert list(plain) == list(wrapped) == list(state)
    converted = convert_state_dict(wrapped, embedding, convert_official_key, source="one_gpu")
    assert converted.keys() == embedding.state_dict().keys()
    assert torch.equal(converted["trunk.0.weight"], state["base.conv1.weight"])
    assert torch.equal(converted["trunk.7.2.bn3.running_var"], state["base.layer4.2.bn3.running_var"])


def test_mode_test_evaluates_the_official_checkpoint(tmp_path: Path, make_config,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = write_tiny_market1501(tmp_path / "market1501", train_identities=(1, 2, 3, 4), test_identities=(7, 8),
                                     num_cameras=2, images_per_camera=1, single_camera_training=True,
                                     image_size=(256, 128))
    state = official_state()
    checkpoint = write_official_checkpoint(tmp_path / "market_sct_mcnl", state, data_parallel=True)
    batches: list[dict[str, Any]] = []
    features: list[torch.Tensor] = []
    original_step, original_features = ReIDModule.test_step, ReIDModule.test_features

    def recording_step(self: ReIDModule, batch: dict[str, Any], batch_idx: int) -> None:
        batches.append({name: value.clone() for name, value in batch.items() if isinstance(value, torch.Tensor)})
        original_step(self, batch, batch_idx)

    def recording_features(self: ReIDModule, images: torch.Tensor) -> torch.Tensor:
        output = original_features(self, images)
        features.append(output.detach().clone())
        return output

    monkeypatch.setattr(ReIDModule, "test_step", recording_step)
    monkeypatch.setattr(ReIDModule, "test_features", recording_features)
    result = run_job(make_config("experiment=mcnl_market_sct", f"data.data_dir={data_dir}", "data.num_workers=0",
                                 "data.pin_memory=false", "data.eval_batch_size=8", "mode=test",
                                 f"ckpt_path={checkpoint}", output_dir=tmp_path / "eval"))
    assert result["notes"]["start weights"].startswith("official MCNL / triplet re-ID model")
    assert len(features) == len(batches) > 1
    evaluated = torch.cat(features)
    expected = torch.cat([reference_features(batch["image"], state) for batch in batches])
    assert max_abs_difference(evaluated, expected) <= 1e-6
    reference = ReIDEvaluator(max_rank=50)
    for batch, batch_features in zip(batches, expected.split([len(b["image"]) for b in batches]), strict=True):
        reference.update(batch_features, batch["identity"], batch["camera"], batch["is_query"], batch["index"])
    scores = {name: float(value) for name, value in reference.compute().items()}
    for name in ("rank1", "rank5", "mAP"):
        assert result["metrics"][f"test/{name}"] == pytest.approx(scores[name], abs=1e-6), name


def test_checkpoints_of_other_networks_are_refused_with_advice(tmp_path: Path) -> None:
    state = official_state()
    imagenet = {name[len("base."):]: value for name, value in state.items()}  # torchvision names, as an ImageNet file
    imagenet |= {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    module = ReIDModule(ReIDEmbedding(resnet50_trunk(last_stride=1)), MCNLLoss())  # what ckpt_path= converts with
    with pytest.raises(OfficialWeightsError, match=r"first `conv1\.weight`.*model\.net\.trunk\.weights_path=<file>"):
        convert_state_dict(imagenet, module.net, module.official_format().convert_key, source="resnet50-19c8e357.pth")
    demo = ReIDModule(ReIDEmbedding(reduced_resnet_trunk()), MCNLLoss())
    with pytest.raises(OfficialWeightsError, match=r"first `base\.layer1\.0\.conv1\.weight`.*model=mcnl_resnet50"):
        convert_state_dict(state, demo.net, demo.official_format().convert_key, source="200_checkpoint_ep200.pth.tar")


def test_run_py_refuses_the_official_softmax_baseline_in_one_line(tmp_path: Path) -> None:
    data_dir = write_tiny_market1501(tmp_path / "market1501", single_camera_training=True)
    softmax = official_state() | {  # main_reid.py --model_name softmax: BaseNetBuilder(num_classes=751)
        "bottleneck.0.weight": torch.zeros(512, 2048), "bottleneck.0.bias": torch.zeros(512),
        "bottleneck.1.weight": torch.ones(512), "bottleneck.1.bias": torch.zeros(512),
        "bottleneck.1.running_mean": torch.zeros(512), "bottleneck.1.running_var": torch.ones(512),
        "bottleneck.1.num_batches_tracked": torch.tensor(0), "classifier.weight": torch.zeros(751, 512),
        "classifier.bias": torch.zeros(751)}
    checkpoint = write_official_checkpoint(tmp_path / "market_sct_softmax", softmax)
    completed = run_cli("experiment=mcnl_market_sct", "mode=test", f"ckpt_path={checkpoint}",
                        f"data.data_dir={data_dir}", "data.num_workers=0", "logger=csv", "trainer.accelerator=cpu",
                        cwd=tmp_path, timeout=300)
    assert completed.returncode == 2, completed.stderr[-2000:]
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, completed.stderr[-2000:]
    assert "200_checkpoint_ep200.pth.tar does not fit ReIDEmbedding" in errors[0]
    assert "first `bottleneck.0.weight`" in errors[0] and "--model_name softmax" in errors[0]
