"""CSE-ResNet, SAKE heads, loss, ITQ and semantic mask: invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from datamodules.writers.sketch_photo import write_official_semantic_mask
from networks.sbir import (
    SakeHeads,
    cse_resnet,
    cse_resnet50,
    distillation_loss,
    fit_itq,
    hamming_distances,
    sake_loss,
    semantic_teacher_targets,
)
from networks.sbir.semantic_mask import load_semantic_mask, main
from visionsuite.errors import ConfigError


@pytest.fixture(scope="module")
def tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return cse_resnet(5, blocks=(1, 1, 1, 1), width_per_group=4).eval()


def test_domain_column_starts_at_zero_so_the_tag_changes_nothing(tiny_net: torch.nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(tiny_net(images, 0), tiny_net(images, 1), atol=1e-6)
        excitation = tiny_net.excitations[0]
        column = excitation.excite.weight.shape[1] - 1
        assert torch.count_nonzero(excitation.excite.weight[:, column]) == 0
        excitation.excite.weight[:, column] = 3.0
        assert not torch.allclose(tiny_net(images, 0), tiny_net(images, 1))
        per_image = tiny_net(images, torch.tensor([0, 1]))
        assert torch.allclose(per_image[0], tiny_net(images[:1], 0)[0], atol=1e-5)
        excitation.excite.weight[:, column] = 0.0
    assert tiny_net.features(images, 1).shape == (2, 2048)
    assert len(tiny_net.excitations) == 4


def test_cse_resnet50_keeps_torchvision_names_and_loads_se_weights_without_the_tag(tmp_path: Path) -> None:
    from torchvision.models import resnet50

    plain = resnet50(weights=None)
    plain_file = tmp_path / "resnet50.pth"
    torch.save(plain.state_dict(), plain_file)
    model = cse_resnet50(weights_path=plain_file)  # torchvision weights load through the zoo
    assert torch.equal(model.resnet.conv1.weight, plain.conv1.weight)
    assert torch.equal(model.resnet.layer3[2].bn3.running_var, plain.layer3[2].bn3.running_var)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(28.1e6, rel=0.01)  # SE-ResNet-50: 28.1M

    se_state = {key: value.clone() for key, value in model.state_dict().items()}
    for key in [k for k in se_state if k.endswith("excitation.excite.weight")]:
        se_state[key] = torch.randn_like(se_state[key][:, :-1])  # an SE-ResNet-50 file: no domain column
    se_file = tmp_path / "se_resnet50.pth"
    torch.save(se_state, se_file)
    loaded = cse_resnet50(weights_path=se_file)
    weight = loaded.resnet.layer1[0].bn3.excitation.excite.weight
    assert torch.equal(weight[:, :-1], se_state["resnet.layer1.0.bn3.excitation.excite.weight"])
    assert torch.count_nonzero(weight[:, -1]) == 0
    with pytest.raises(ConfigError, match="no such file"):
        cse_resnet50(weights_path=tmp_path / "missing.pth")


@pytest.mark.parametrize("embedding_dim", [3, 8])
def test_svd_initialisation_reproduces_the_classifier(embedding_dim: int) -> None:
    torch.manual_seed(0)
    classifier = torch.nn.Linear(16, 5)
    heads = SakeHeads(16, embedding_dim, 5, 7)
    heads.initialise_from_classifier(classifier)
    features = torch.randn(4, 16)
    _embedding, logits, benchmark = heads(features)
    assert benchmark.shape == (4, 7)
    if embedding_dim >= 5:  # full rank kept: the student's teacher-class logits equal the classifier's
        assert torch.allclose(logits, classifier(features), atol=1e-4)
    else:
        weight = heads.distillation.weight @ heads.embedding.weight
        best = torch.linalg.matrix_rank(weight)
        assert int(best) == embedding_dim


def test_sake_loss_distils_photos_only_and_lambda_zero_is_plain_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    teacher, student, rows = torch.randn(2, 10), torch.randn(2, 10), torch.rand(2, 10)
    targets = semantic_teacher_targets(teacher, rows, lambda_kd=1.0, lambda_sem=0.3)
    assert torch.allclose(targets, torch.softmax(teacher + 0.3 * rows, dim=1))
    total, cross_entropy, distillation = sake_loss(logits, labels, student, targets, sake_lambda=1.0)
    assert torch.isclose(cross_entropy, F.cross_entropy(logits, labels))
    expected = -(targets * F.log_softmax(student, 1)).sum(1).mean()
    assert torch.isclose(distillation, expected) and torch.isclose(total, cross_entropy + expected)
    assert torch.isclose(sake_loss(logits, labels, student, targets, 0.0)[0], cross_entropy)
    assert distillation_loss(student[:0], targets[:0]) == 0


def test_itq_codes_and_hamming_distances() -> None:
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 4
    features = torch.cat([centres[i] + 0.1 * torch.randn(20, 16) for i in range(3)])
    encoder = fit_itq(features, bits=8)
    codes = encoder.codes(features)
    assert codes.shape == (60, 8) and codes.dtype == torch.bool
    distances = hamming_distances(codes, codes)
    assert torch.equal(distances, (codes[:, None, :] != codes[None, :, :]).sum(-1).float())
    within, across = distances[:20, :20].mean(), distances[:20, 20:].mean()
    assert within < across
    with pytest.raises(ValueError, match="bits"):
        fit_itq(features, bits=32)


def test_semantic_mask_shape_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "mask.npy"
    np.save(path, np.zeros((5, 1000), dtype=np.float32))
    assert load_semantic_mask(path, list("abcde"), 1000).shape == (5, 1000)
    with pytest.raises(ConfigError, match=r"shape \(5, 1000\), expected \(6, 1000\)"):
        load_semantic_mask(path, list("abcdef"), 1000)
    with pytest.raises(ConfigError, match="no such file"):
        load_semantic_mask(tmp_path / "none.npy", list("abcdef"), 1000)


def test_the_official_cid_mask_pickle_is_read_by_class_name(tmp_path: Path) -> None:
    """SAKE's dataset.zip format: cid_mask.pickle {class id: row} + cname_cid.txt; ids need not follow our order."""
    official_order = ["zebra", "alarm clock", "cup"]  # its own class ids 0, 1, 2
    rows = np.arange(3 * 4, dtype=np.float64).reshape(3, 4) / 10
    path = write_official_semantic_mask(tmp_path / "zeroshot", official_order, rows)
    ours = ["alarm clock", "cup", "unseen class", "zebra"]  # sorted folder names; one class the file lacks
    mask = load_semantic_mask(path, ours, 4, required=["alarm clock", "zebra"])
    assert mask.dtype == np.float32 and mask.shape == (4, 4)
    assert np.allclose(mask[[0, 1, 3]], rows[[1, 2, 0]]) and not mask[2].any()
    with pytest.raises(ConfigError, match="no row for the seen class.*unseen class"):
        load_semantic_mask(path, ours, 4, required=["unseen class"])
    with pytest.raises(ConfigError, match="row of class 'alarm clock' has 4 values"):
        load_semantic_mask(path, ours, 1000)
    (tmp_path / "zeroshot" / "cname_cid.txt").unlink()
    with pytest.raises(ConfigError, match="needs .*cname_cid.txt beside it"):
        load_semantic_mask(path, ours, 4)
    garbage = tmp_path / "bad" / "cid_mask.pickle"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a pickle")
    (garbage.parent / "cname_cid.txt").write_text("cup 0\n")
    with pytest.raises(ConfigError, match="not a readable pickle"):
        load_semantic_mask(garbage, ["cup"], 4)


def test_wordnet_command_fails_clearly_without_wordnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_nltk(name: str, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if name.startswith("nltk"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nltk)
    (tmp_path / "classes.txt").write_text("airplane n02691156\n")
    (tmp_path / "imagenet.txt").write_text("n02690373 airliner\n")
    with pytest.raises(ConfigError, match="nltk"):
        main(["--class-wnids", str(tmp_path / "classes.txt"), "--imagenet-wnids", str(tmp_path / "imagenet.txt"),
              "--output", str(tmp_path / "mask.npy")])
