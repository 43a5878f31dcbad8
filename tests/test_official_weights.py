"""Reading official checkpoint files and the strict conversion every network family's converter goes through."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tests.golden import write_official_file
from visionsuite.official_weights import (
    OfficialWeightsError,
    convert_state_dict,
    is_lightning_checkpoint,
    load_official_file,
    read_official_weights,
    rename_by_prefix,
)


class Official(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.fc = nn.Linear(4, 2)


class Suite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.classifier = nn.Linear(4, 2)


TO_SUITE = rename_by_prefix({"features.": "stem.", "fc.": "classifier."})


@pytest.mark.parametrize("wrapper", ["plain", "state_dict", "module", "training"])
def test_every_official_wrapper_reads_to_the_same_flat_state_dict(tmp_path: Path, wrapper: str) -> None:
    official = Official().state_dict()
    path = write_official_file(tmp_path / f"{wrapper}.pth", official, wrapper)
    read = read_official_weights(path)
    assert list(read) == list(official)
    assert all(torch.equal(read[name], official[name]) for name in official)


def test_a_converted_file_loads_and_computes_the_same_function(tmp_path: Path) -> None:
    official = Official().eval()
    path = write_official_file(tmp_path / "model.pth", official.state_dict(), "module")
    suite = Suite().eval()
    load_official_file(suite, path, TO_SUITE)
    x = torch.randn(2, 3, 5, 5)
    expected = official.fc(official.features(x).mean(dim=(2, 3)))
    assert torch.equal(suite.classifier(suite.stem(x).mean(dim=(2, 3))), expected)


def test_an_official_key_without_a_place_is_named_with_the_file(tmp_path: Path) -> None:
    state = Official().state_dict()
    state["extra.weight"] = torch.zeros(3)
    with pytest.raises(OfficialWeightsError, match=r"model\.pth.*`extra\.weight`"):
        convert_state_dict(state, Suite(), TO_SUITE, source=tmp_path / "model.pth")


def test_a_network_entry_left_empty_is_named() -> None:
    state = Official().state_dict()
    del state["fc.bias"]
    with pytest.raises(OfficialWeightsError, match=r"no official weight, first `classifier\.bias`"):
        convert_state_dict(state, Suite(), TO_SUITE, source="model.pth")


def test_a_shape_mismatch_names_both_keys() -> None:
    state = Official().state_dict()
    state["fc.weight"] = torch.zeros(5, 4)
    with pytest.raises(OfficialWeightsError, match=r"`fc\.weight` has shape \(5, 4\).*`classifier\.weight` has \(2, 4\)"):
        convert_state_dict(state, Suite(), TO_SUITE, source="model.pth")


def test_files_that_hold_no_state_dict_or_cannot_be_read_get_one_message(tmp_path: Path) -> None:
    torch.save({"epoch": 3, "arch": "x"}, tmp_path / "meta.pth")
    with pytest.raises(OfficialWeightsError, match=r"meta\.pth holds no state dict: its top-level keys are epoch, arch"):
        read_official_weights(tmp_path / "meta.pth")
    (tmp_path / "broken.pth").write_bytes(b"not a torch file")
    with pytest.raises(OfficialWeightsError, match=r"broken\.pth cannot be read"):
        read_official_weights(tmp_path / "broken.pth")
    with pytest.raises(OfficialWeightsError, match="no such file"):
        read_official_weights(tmp_path / "absent.pth")


def test_lightning_checkpoints_are_told_apart_from_official_files() -> None:
    assert is_lightning_checkpoint({"state_dict": {}, "pytorch-lightning_version": "2.6"})
    assert is_lightning_checkpoint({"state_dict": {}, "visionsuite": {"format": 1}})
    assert not is_lightning_checkpoint({"state_dict": {}, "epoch": 3})
    assert not is_lightning_checkpoint({"conv.weight": torch.zeros(1)})


def test_files_from_before_batchnorm_counters_load_with_zero_counters(tmp_path: Path) -> None:
    # PyTorch < 0.4.1 saved BatchNorm without num_batches_tracked (DARTS's released models, Cadene's SE-ResNet-50).
    official = {name: tensor for name, tensor in Official().state_dict().items() if "num_batches_tracked" not in name}
    path = write_official_file(tmp_path / "old.pt", official)
    suite = Suite()
    suite.stem[1].num_batches_tracked.fill_(7)
    load_official_file(suite, path, TO_SUITE)
    assert int(suite.stem[1].num_batches_tracked) == 0
    assert list(read_official_weights(path))[:6] == ["features.0.weight", "features.0.bias", "features.1.weight",
                                                      "features.1.bias", "features.1.running_mean",
                                                      "features.1.running_var"]
