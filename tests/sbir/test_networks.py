"""CSE-ResNet, SAKE heads, loss, ITQ and the semantic mask reader: invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from datamodules.sbir.semantic_mask import load_semantic_mask, main
from datamodules.writers.sketch_photo import write_official_semantic_mask
from networks.sbir import (
    SakeHeads,
    cse_resnet,
    distillation_loss,
    fit_itq,
    hamming_distances,
    sake_loss,
    semantic_teacher_targets,
)
from visionsuite.errors import DatasetError


@pytest.fixture(scope="module")
def tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return cse_resnet(5, blocks=(1, 1, 1, 1), width_per_group=4).eval()


def test_domain_column_starts_at_zero_so_the_tag_changes_nothing(tiny_net: torch.nn.Module) -> None:
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(tiny_net(images, 0), tiny_net(images, 1))
        excitation = tiny_net.excitations[0]
        column = excitation.fc2.weight.shape[1] - 1
        assert torch.count_nonzero(excitation.fc2.weight[:, column]) == 0
        excitation.fc2.weight[:, column] = 3.0
        assert not torch.allclose(tiny_net(images, 0), tiny_net(images, 1))
        per_image = tiny_net(images, torch.tensor([0, 1]))
        assert torch.allclose(per_image[0], tiny_net(images[:1], 0)[0], atol=1e-5)
        assert torch.allclose(per_image[1], tiny_net(images[1:], 1)[0], atol=1e-5)
        excitation.fc2.weight[:, column] = 0.0
    assert tiny_net.features(images, 1).shape == (2, 2048)
    assert len(tiny_net.excitations) == 4
    with pytest.raises(ValueError, match="3 tags for a batch of 2"):
        tiny_net(images, torch.tensor([0, 1, 1]))


def test_the_backbone_has_the_official_caffe_layout(tiny_net: torch.nn.Module) -> None:
    """Stride in the bottleneck's first 1x1 convolution, ceil-mode max-pool without padding, official names."""
    pool = tiny_net.layer0.pool
    assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 0, True)
    for stage, stride in zip(tiny_net.stages, (1, 2, 2, 2), strict=True):
        first = stage[0]
        assert first.conv1.stride == (stride, stride) and first.conv2.stride == (1, 1)
        assert first.downsample[0].stride == (stride, stride)
    names = set(tiny_net.state_dict())
    assert {"layer0.conv1.weight", "layer2.0.se_module.fc1.weight", "layer2.0.se_module.fc2.bias",
            "layer4.0.downsample.1.running_var", "last_linear.weight"} <= names
    assert tiny_net.layer1[0].se_module.fc2.weight.shape == (256, 256 // 16 + 1)
    # 224 -> 112 (conv) -> 56 (pool: ceil((112 - 3) / 2) + 1) -> 56, 28, 14, 7: AvgPool2d(7) = the global mean
    maps = []
    handle = tiny_net.layer4[-1].register_forward_hook(lambda _m, _i, output: maps.append(output.shape[-2:]))
    with torch.no_grad():
        tiny_net(torch.randn(1, 3, 224, 224), 0)
    handle.remove()
    assert maps == [(7, 7)]


def test_the_student_drops_the_classifier_it_was_initialised_from(tiny_net: torch.nn.Module) -> None:
    import copy

    net = copy.deepcopy(tiny_net)
    classifier = net.remove_classifier()
    assert classifier.out_features == 5 and net.last_linear is None
    assert not any(name.startswith("last_linear") for name in net.state_dict())
    with pytest.raises(RuntimeError, match="removed"):
        net(torch.randn(1, 3, 32, 32), 0)


@pytest.mark.parametrize("embedding_dim", [3, 8])
def test_svd_initialisation_reproduces_the_classifier_and_keeps_the_default_biases(embedding_dim: int) -> None:
    """The official initialize_pretrained_model_hashing: embedding S_d V_d^T, head U_d; biases not from W."""
    torch.manual_seed(0)
    classifier = torch.nn.Linear(16, 5)
    heads = SakeHeads(16, embedding_dim, 5, 7)
    biases = heads.embedding.bias.clone(), heads.distillation.bias.clone()
    heads.initialise_from_classifier(classifier)
    assert torch.equal(heads.embedding.bias, biases[0]) and torch.equal(heads.distillation.bias, biases[1])
    assert heads.embedding.bias.abs().max() <= 1 / 16 ** 0.5 and heads.embedding.bias.abs().max() > 0  # nn.Linear's
    rank = min(embedding_dim, 5)
    head = heads.distillation.weight[:, :rank].double()
    assert torch.allclose(head.T @ head, torch.eye(rank, dtype=torch.float64), atol=1e-6)  # U_d: orthonormal columns
    singular = torch.linalg.svdvals(classifier.weight.detach().double())[:rank]
    assert torch.allclose(heads.embedding.weight[:rank].double().norm(dim=1), singular, atol=1e-5)  # rows of S_d V_d^T
    product = heads.distillation.weight @ heads.embedding.weight
    if embedding_dim >= 5:  # full rank kept: the product is W itself
        assert torch.allclose(product, classifier.weight, atol=1e-5)
    else:
        assert int(torch.linalg.matrix_rank(product)) == embedding_dim
    _embedding, logits, benchmark = heads(torch.randn(4, 16))
    assert logits.shape == (4, 5) and benchmark.shape == (4, 7)


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
    with pytest.raises(DatasetError, match=r"shape \(5, 1000\), expected \(6, 1000\)"):
        load_semantic_mask(path, list("abcdef"), 1000)
    with pytest.raises(DatasetError, match="no such semantic mask"):
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
    with pytest.raises(DatasetError, match="no row for the seen class.*unseen class"):
        load_semantic_mask(path, ours, 4, required=["unseen class"])
    with pytest.raises(DatasetError, match="row of class 'alarm clock' has 4 values"):
        load_semantic_mask(path, ours, 1000)
    (tmp_path / "zeroshot" / "cname_cid.txt").unlink()
    with pytest.raises(DatasetError, match="needs .*cname_cid.txt beside it"):
        load_semantic_mask(path, ours, 4)
    garbage = tmp_path / "bad" / "cid_mask.pickle"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a pickle")
    (garbage.parent / "cname_cid.txt").write_text("cup 0\n")
    with pytest.raises(DatasetError, match="not a readable pickle"):
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
    with pytest.raises(DatasetError, match="nltk"):
        main(["--class-wnids", str(tmp_path / "classes.txt"), "--imagenet-wnids", str(tmp_path / "imagenet.txt"),
              "--output", str(tmp_path / "mask.npy")])
