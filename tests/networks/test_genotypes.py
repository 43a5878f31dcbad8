"""Genotype data, validation, the genotype.json format and name resolution."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from networks.nas.genotypes import (
    GENOTYPE_FORMAT,
    PUBLISHED_GENOTYPES,
    Genotype,
    load_genotype_json,
    resolve_genotype,
    save_genotype_json,
    validate_genotype,
)
from visionsuite.errors import ConfigError

DARTS_V2 = PUBLISHED_GENOTYPES["DARTS_V2"]


@pytest.mark.parametrize("name", sorted(PUBLISHED_GENOTYPES))
def test_published_genotypes_validate(name: str) -> None:
    genotype = PUBLISHED_GENOTYPES[name]
    validate_genotype(genotype)
    assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)


def test_published_fixtures() -> None:
    assert set(PUBLISHED_GENOTYPES) == {
        "DARTS",
        "DARTS_V1",
        "DARTS_V2",
        "PC_DARTS_cifar",
        "PC_DARTS_image",
        "PDARTS",
    }
    assert PUBLISHED_GENOTYPES["DARTS"] is DARTS_V2
    assert DARTS_V2.normal[-1] == ("dil_conv_3x3", 2)
    assert PUBLISHED_GENOTYPES["PC_DARTS_image"].normal[-1] == ("dil_conv_5x5", 4)
    assert PUBLISHED_GENOTYPES["PDARTS"].reduce[0] == ("avg_pool_3x3", 0)
    assert PUBLISHED_GENOTYPES["DARTS_V1"].reduce[-1] == ("avg_pool_3x3", 0)


def test_genotype_is_frozen_and_normalises_lists() -> None:
    genotype = Genotype([["sep_conv_3x3", 0]] * 8, [2, 3, 4, 5], [("max_pool_3x3", 1)] * 8, [2, 3, 4, 5])
    assert genotype.normal[0] == ("sep_conv_3x3", 0)
    assert genotype.normal_concat == (2, 3, 4, 5)
    hash(genotype)
    with pytest.raises(dataclasses.FrozenInstanceError):
        genotype.normal = ()  # type: ignore[misc]


def test_dict_round_trip() -> None:
    for genotype in PUBLISHED_GENOTYPES.values():
        data = genotype.to_dict()
        assert data["format"] == GENOTYPE_FORMAT
        assert Genotype.from_dict(json.loads(json.dumps(data))) == genotype


def _with(**changes: object) -> Genotype:
    return dataclasses.replace(DARTS_V2, **changes)


def test_unknown_op_lists_known_ops() -> None:
    bad = _with(normal=(("conv_7x7", 0),) + DARTS_V2.normal[1:])
    with pytest.raises(ValueError, match=r"unknown op 'conv_7x7'.*known ops: none, max_pool_3x3"):
        validate_genotype(bad)


def test_wrong_edge_count_states_expected() -> None:
    with pytest.raises(
        ValueError, match=r"genotype\.reduce has 7 edges; expected exactly 8.*4 intermediate nodes"
    ):
        validate_genotype(_with(reduce=DARTS_V2.reduce[:-1]))
    with pytest.raises(ValueError, match="positive even number"):
        validate_genotype(_with(normal=DARTS_V2.normal[:-1]), num_nodes=None)
    validate_genotype(_with(normal=DARTS_V2.normal[:6], normal_concat=(2, 3, 4)), num_nodes=None)


def test_input_index_out_of_range() -> None:
    normal = list(DARTS_V2.normal)
    normal[2] = ("sep_conv_3x3", 3)  # node 3 takes inputs 0..2
    with pytest.raises(
        ValueError, match=r"input index 3 is out of range for node 3, which takes inputs 0\.\.2"
    ):
        validate_genotype(_with(normal=tuple(normal)))
    normal[2] = ("sep_conv_3x3", -1)
    with pytest.raises(ValueError, match="out of range"):
        validate_genotype(_with(normal=tuple(normal)))


def test_concat_index_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"reduce_concat contains 6, out of range.*2\.\.5"):
        validate_genotype(_with(reduce_concat=(2, 3, 4, 6)))
    with pytest.raises(ValueError, match="repeats"):
        validate_genotype(_with(reduce_concat=(2, 3, 3, 5)))


def test_json_round_trip_with_metadata(tmp_path: Path) -> None:
    path = save_genotype_json(
        PUBLISHED_GENOTYPES["PDARTS"],
        tmp_path / "run" / "genotype.json",
        source="pdarts_search",
        epoch=24,
        alpha_normal=torch.zeros(2, 3),
    )
    assert load_genotype_json(path) == PUBLISHED_GENOTYPES["PDARTS"]
    data = json.loads(path.read_text())
    assert data["format"] == GENOTYPE_FORMAT
    assert data["normal"][0] == ["skip_connect", 0]
    assert data["metadata"] == {"source": "pdarts_search", "epoch": 24, "alpha_normal": [[0.0] * 3] * 2}
    assert [p.name for p in path.parent.iterdir()] == ["genotype.json"]  # no temp file left behind


def test_save_refuses_invalid_genotype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="genotype.normal_concat"):
        save_genotype_json(_with(normal_concat=(9,)), tmp_path / "genotype.json")
    assert not (tmp_path / "genotype.json").exists()


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match=f"{path}.*does not exist"):
        load_genotype_json(path)


def test_malformed_json_names_path(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_text('{"normal": [["sep_conv_3x3", 0],')
    with pytest.raises(ConfigError, match=f"{path} is not valid JSON"):
        load_genotype_json(path)


def test_missing_key_names_path_and_key(tmp_path: Path) -> None:
    data = DARTS_V2.to_dict()
    del data["reduce_concat"]
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"{path}: missing key\\(s\\) reduce_concat"):
        load_genotype_json(path)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("normal", "sep_conv_3x3", "must be a list of"),
        ("normal", [["sep_conv_3x3", "0"]] * 8, r"normal\[0\] must be an \[op name, input index\] pair"),
        ("reduce_concat", [2, 3, "4", 5], "must be a list of integers"),
        ("format", "visionsuite-genotype/99", "unsupported format"),
    ],
)
def test_wrong_types_name_path(tmp_path: Path, key: str, value: object, words: str) -> None:
    data = DARTS_V2.to_dict()
    data[key] = value
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=words) as info:
        load_genotype_json(path)
    assert str(path) in str(info.value)


def test_loaded_genotype_is_validated(tmp_path: Path) -> None:
    data = DARTS_V2.to_dict()
    data["normal"][0] = ["conv_7x7", 0]
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"{path}.*unknown op 'conv_7x7'"):
        load_genotype_json(path)


def test_resolve_by_name_path_mapping_and_genotype(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_genotype("PC_DARTS_cifar") is PUBLISHED_GENOTYPES["PC_DARTS_cifar"]
    assert resolve_genotype("DARTS") == DARTS_V2
    assert resolve_genotype(DARTS_V2) is DARTS_V2
    assert resolve_genotype(DARTS_V2.to_dict()) == DARTS_V2
    path = save_genotype_json(PUBLISHED_GENOTYPES["PDARTS"], tmp_path / "sub" / "genotype.json")
    assert resolve_genotype(str(path)) == PUBLISHED_GENOTYPES["PDARTS"]
    assert resolve_genotype(path) == PUBLISHED_GENOTYPES["PDARTS"]
    monkeypatch.chdir(tmp_path / "sub")
    assert resolve_genotype("genotype.json") == PUBLISHED_GENOTYPES["PDARTS"]


def test_resolve_unknown_name_lists_names() -> None:
    with pytest.raises(ValueError) as info:
        resolve_genotype("DARTS_V3")
    message = str(info.value)
    for name in PUBLISHED_GENOTYPES:
        assert name in message
    assert message.startswith("genotype='DARTS_V3'") and "genotype.json" in message  # the config key is added above


def test_resolve_mapping_missing_key() -> None:
    data = DARTS_V2.to_dict()
    del data["normal"]
    with pytest.raises(ValueError, match="^genotype: missing key"):
        resolve_genotype(data)
