"""SAKE computes the official function: the golden outputs of the official networks, from their files.

Golden files (``tests/golden.py``): ``sake_se_resnet50_imagenet`` (Cadene's ``se_resnet50``, the layout of
``se_resnet50-ce0d4300.pth``) and ``sake_cse_resnet50_sketchy`` (SAKE's student ``CSEResnetModel_KDHashing
('cse_resnet50', 64, 100)``). Each test rebuilds the official state dict, writes it as the official file is written,
reads it with the converter users get and compares every output (tolerance 1e-5).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from lightning_modules.sake import SakeModule
from metrics.sbir import SbirRetrievalMetric
from networks.sbir import SakeHeads, SakeLoss, SakeStudent, convert_sake_student_key, cse_resnet50
from networks.sbir.cse_resnet import FEATURE_DIM
from networks.sbir.official import SE_RESNET50_FILE
from tests.golden import golden_state_dict, load_golden, max_abs_difference, write_official_file
from visionsuite.official_weights import OfficialWeightsError, load_converted, read_official_weights

TOLERANCE = 1e-5
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _parameter_count(keys: list) -> int:
    return sum(torch.Size(shape).numel() for name, shape, _dtype in keys if not name.endswith(BUFFERS))


@pytest.fixture(scope="module")
def student() -> SakeModule:
    """The SAKE module of ``experiment=sake_sketchy`` (d = 64, 100 seen classes), without ImageNet weights."""
    torch.manual_seed(0)
    return SakeModule(cse_resnet50(), SakeHeads(FEATURE_DIM, 64, 1000, 100), SakeLoss(), partial(SbirRetrievalMetric),
                      num_classes=100)


def test_the_imagenet_se_resnet50_file_as_downloaded_gives_the_golden_logits_for_either_tag(tmp_path: Path) -> None:
    golden = load_golden("sake_se_resnet50_imagenet")
    state = golden_state_dict(golden["keys"])
    # Cadene's 2017 file predates BatchNorm's num_batches_tracked; the converter fills it as BatchNorm does.
    state = {name: tensor for name, tensor in state.items() if not name.endswith("num_batches_tracked")}
    path = write_official_file(tmp_path / SE_RESNET50_FILE, state)
    net = cse_resnet50(weights_path=path).eval()  # what model.net.weights_path does
    assert torch.equal(net.layer1[0].se_module.fc1.weight, state["layer1.0.se_module.fc1.weight"].flatten(1))
    fc2 = net.layer4[2].se_module.fc2.weight
    assert torch.equal(fc2[:, :-1], state["layer4.2.se_module.fc2.weight"].flatten(1)) and not fc2[:, -1].any()
    with torch.no_grad():
        sketch, photo = net(golden["inputs"], 0), net(golden["inputs"], 1)  # the teacher's classifier path
    expected = golden["outputs"]["eval_logits"]
    assert max_abs_difference(sketch, expected) <= TOLERANCE and max_abs_difference(photo, expected) <= TOLERANCE
    assert max_abs_difference(sketch, photo) <= 1e-6  # CSE with the zero tag column = the SE-ResNet-50
    tag_columns = sum(block.se_module.fc2.out_features for block in net.layer1 + net.layer2 + net.layer3 + net.layer4)
    assert sum(p.numel() for p in net.parameters()) == _parameter_count(golden["keys"]) + tag_columns


def test_model_best_gives_the_golden_student_outputs(tmp_path: Path, student: SakeModule) -> None:
    golden = load_golden("sake_cse_resnet50_sketchy")
    path = write_official_file(tmp_path / "model_best.pth.tar", golden_state_dict(golden["keys"]), "training")
    official_format = student.official_format()  # what ckpt_path=model_best.pth.tar converts with
    load_converted(official_format.network, read_official_weights(path), official_format.convert_key, source=path)
    student.eval()
    images, tags = golden["inputs"]["images"], golden["inputs"]["tags"]
    with torch.no_grad():
        class_logits, imagenet_logits = official_format.network(images, tags)
        embedding = student.embed(images, tags)  # what validation, test and predict read
    outputs = {"class_logits": class_logits, "imagenet_logits": imagenet_logits, "embedding": embedding,
               "embedding_l2": F.normalize(embedding, dim=1)}
    differences = {name: max_abs_difference(value, golden["outputs"][name]) for name, value in outputs.items()}
    assert max(differences.values()) <= TOLERANCE, differences
    # The student the suite trains is the official one: 26,256,764 parameters (no unused 2048 -> 1000 classifier).
    trained = sum(p.numel() for p in student.optimizer_parameters())
    assert trained == _parameter_count(golden["keys"]) == 26_256_764


def test_files_of_another_network_are_refused_naming_the_first_key(tmp_path: Path, student: SakeModule) -> None:
    zeros = {name: torch.zeros(shape, dtype=getattr(torch, dtype.replace("torch.", "")))
             for name, shape, dtype in load_golden("sake_se_resnet50_imagenet")["keys"]}
    imagenet_file = write_official_file(tmp_path / SE_RESNET50_FILE, zeros)
    official_format = student.official_format()
    with pytest.raises(OfficialWeightsError, match=r"se_resnet50-ce0d4300\.pth does not fit SakeStudent as SAKE "
                                                   r"student.*first `layer0\.conv1\.weight`.*first "
                                                   r"`net\.layer0\.conv1\.weight`"):
        load_converted(official_format.network, read_official_weights(imagenet_file), official_format.convert_key,
                       source=imagenet_file, description=official_format.description)
    student_keys = load_golden("sake_cse_resnet50_sketchy")["keys"]
    checkpoint = write_official_file(tmp_path / "model_best.pth.tar", {
        name: torch.zeros(shape, dtype=getattr(torch, dtype.replace("torch.", ""))) for name, shape, dtype in student_keys
    }, "training")
    with pytest.raises(OfficialWeightsError, match=r"model_best\.pth\.tar does not fit CSEResNet.*first "
                                                   r"`original_model\.layer0\.conv1\.weight`"):
        cse_resnet50(weights_path=checkpoint)  # a trained student given as ImageNet weights
    backbone = cse_resnet50()
    backbone.remove_classifier()
    wide = SakeStudent(backbone, SakeHeads(FEATURE_DIM, 512, 1000, 100))  # the student of model.heads.embedding_dim=512
    with pytest.raises(OfficialWeightsError, match=r"`original_model\.second_last_linear\.weight` has shape \(64, "
                                                   r"2048\) but the network's `heads\.embedding\.weight` has \(512, "
                                                   r"2048\)"):
        load_converted(wide, read_official_weights(checkpoint), convert_sake_student_key, source=checkpoint)
    with pytest.raises(OfficialWeightsError, match="no such file.*se_resnet50-ce0d4300.pth"):
        cse_resnet50(weights_path=tmp_path / "absent.pth")
