"""The attacks of the logit defense, built with torchattacks from one config entry each (``conf/attack/``).

Settings of the paper's code (arXiv:1906.10973; ImageNet, pixels in [0, 1]):

* PGD (L-inf): ``eps`` 16/255, step ``alpha`` 2/255, 10 iterations, random start.
* C&W L2: learning rate 0.01, initial constant 10, 10,000 iterations, 9 binary-search steps, untargeted.
  torchattacks' ``CW`` has no binary search over the constant: ``c`` stays at its initial value.
* DeepFool: at most 50 iterations over 10 candidate classes. torchattacks' ``DeepFool`` uses every class
  as a candidate (the same on the 10-class datasets, slower on ImageNet).
* FGSM: one signed-gradient step of size ``eps``.

An entry is ``{name: <attack>, <parameter>: <value>, ...}``; :func:`validate_attack_spec` checks the name and
the range of every parameter before anything runs, naming the config key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torchattacks
from torch import nn

from visionsuite.errors import ConfigError


def _at_least(minimum: float, integer: bool = False) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if integer and not isinstance(value, int):
            return False
        return isinstance(value, int | float) and value >= minimum

    check.__doc__ = f"{'an integer' if integer else 'a number'} >= {minimum}"
    return check


def _above(minimum: float) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, int | float) and value > minimum

    check.__doc__ = f"a number > {minimum}"
    return check


def _boolean(value: Any) -> bool:
    """true or false"""
    return isinstance(value, bool)


@dataclass(frozen=True)
class AttackKind:
    """A torchattacks class and the checks of its parameters (parameter -> predicate with a docstring)."""

    factory: Callable[..., torchattacks.attack.Attack]
    parameters: Mapping[str, Callable[[Any], bool]]


ATTACKS: dict[str, AttackKind] = {
    "pgd": AttackKind(torchattacks.PGD, {"eps": _at_least(0.0), "alpha": _above(0.0), "steps": _at_least(1, True),
                                         "random_start": _boolean}),
    "fgsm": AttackKind(torchattacks.FGSM, {"eps": _at_least(0.0)}),
    "cw_l2": AttackKind(torchattacks.CW, {"c": _above(0.0), "kappa": _at_least(0.0), "steps": _at_least(1, True),
                                          "lr": _above(0.0)}),
    "deepfool": AttackKind(torchattacks.DeepFool, {"steps": _at_least(1, True), "overshoot": _at_least(0.0)}),
}


def validate_attack_spec(spec: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Check one attack entry (found at config key ``key``); return its parameters without ``name``.

    Raises:
        ConfigError: unknown attack name (lists the known ones), unknown parameter, or a value out of range
            (``eps < 0``, ``steps < 1``...).
    """
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(f"`{key}` must be an attack entry with a `name` (one of {', '.join(sorted(ATTACKS))}); "
                          f"got {spec!r}.")
    name = spec["name"]
    if name not in ATTACKS:
        raise ConfigError(f"`{key}.name`: unknown attack {name!r}; known attacks: {', '.join(sorted(ATTACKS))} "
                          "(one file each under conf/attack/).")
    kind = ATTACKS[name]
    parameters = {parameter: value for parameter, value in spec.items() if parameter != "name"}
    for parameter, value in parameters.items():
        if parameter not in kind.parameters:
            raise ConfigError(f"`{key}.{parameter}`: attack {name!r} has no parameter {parameter!r}; its parameters: "
                              f"{', '.join(kind.parameters)}.")
        check = kind.parameters[parameter]
        if not check(value):
            raise ConfigError(f"`{key}.{parameter}`={value!r} is out of range for attack {name!r}: use {check.__doc__}.")
    return parameters


def build_attack(spec: Mapping[str, Any], model: nn.Module, key: str = "attack",
                 device: torch.device | None = None) -> torchattacks.attack.Attack:
    """The torchattacks attack of ``spec`` against ``model`` (which takes images in [0, 1], see
    :class:`~networks.defense.normalized.NormalizedClassifier`)."""
    parameters = validate_attack_spec(spec, key)
    attack = ATTACKS[spec["name"]].factory(model, **parameters)
    if device is not None:
        attack.set_device(device)
    return attack


__all__ = ["ATTACKS", "AttackKind", "build_attack", "validate_attack_spec"]
