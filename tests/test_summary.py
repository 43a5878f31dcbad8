"""mode=summary: the network's size without data, reproducing the papers' parameter counts."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli
from visionsuite.pipeline import run_job

PUBLISHED_PARAMS_M = [
    ("nas_train_cifar10", "DARTS_V2", 3.3),
    ("nas_train_cifar10", "PC_DARTS_cifar", 3.6),
    ("nas_train_cifar10", "PDARTS", 3.4),
    ("nas_train_imagenet", "DARTS_V2", 4.7),
    ("nas_train_imagenet", "PC_DARTS_image", 5.3),
    ("nas_train_imagenet", "PDARTS", 4.9),
]


@pytest.mark.parametrize("experiment,genotype,published", PUBLISHED_PARAMS_M)
def test_summary_reproduces_published_sizes(make_config, capsys, experiment: str, genotype: str,
                                            published: float) -> None:
    cfg = make_config(f"experiment={experiment}", f"model.net.genotype={genotype}", "mode=summary")
    run_job(cfg)
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    report = json.loads(last_line)
    assert round(report["params_m"], 1) == published
    assert report["params_with_auxiliary_m"] > report["params_m"]
    assert report["madds_m"] > 0


def test_summary_from_the_command_line_ends_with_json(tmp_path) -> None:
    completed = run_cli("experiment=nas_train_imagenet", "model.net.genotype=PC_DARTS_image", "mode=summary",
                        "logger=csv", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert round(report["params_m"], 1) == 5.3
    # Multiply-adds at 224x224, convolutions + linear layers (the published 597M counts more operators).
    assert 500 < report["madds_m"] < 650
