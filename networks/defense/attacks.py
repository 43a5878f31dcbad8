"""The attacks of the logit defense, built with torchattacks from one entry each (``{name: pgd, eps: ...}``).

Settings of the paper's code (arXiv:1906.10973; ImageNet, pixels in [0, 1]):

* PGD (L-inf): ``eps`` 16/255, step ``alpha`` 2/255, 10 iterations, random start.
* C&W L2: learning rate 0.01, initial constant 10, 10,000 iterations, 9 binary-search steps, untargeted.
  torchattacks' ``CW`` has no binary search over the constant: ``c`` stays at its initial value.
* DeepFool: at most 50 iterations over 10 candidate classes. torchattacks' ``DeepFool`` uses every class
  as a candidate (the same on the 10-class datasets, slower on ImageNet).
* FGSM: one signed-gradient step of size ``eps``.

:func:`attack_parameters` checks an entry's name and the range of every parameter before anything runs, and
names the parameter first in its ``ValueError`` (``eps=-0.1 is out of range ...``).

Recording (what the attack phase does per shard): :func:`record_logits` gives the clean logits and the logits
under every attack; :func:`seeded` with :func:`shard_seed` makes a shard's random numbers (PGD's random start)
depend only on ``(seed, split, shard)``, so a shard written after a resume equals the one an uninterrupted run
writes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torchattacks
from torch import nn


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


def attack_parameters(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check one attack entry ``{name: <attack>, <parameter>: <value>, ...}``; return its parameters without ``name``.

    Raises:
        ValueError: naming the argument first: an unknown attack ``name`` (lists the known ones), an unknown
            parameter, or a value out of range (``eps < 0``, ``steps < 1``...).
    """
    known = ", ".join(sorted(ATTACKS))
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ValueError(f"name is missing: an attack entry needs a `name` (one of {known}); got {spec!r}")
    name = spec["name"]
    if name not in ATTACKS:
        raise ValueError(f"name: unknown attack {name!r}; known attacks: {known}")
    kind = ATTACKS[name]
    parameters = {parameter: value for parameter, value in spec.items() if parameter != "name"}
    for parameter, value in parameters.items():
        if parameter not in kind.parameters:
            raise ValueError(f"{parameter}: attack {name!r} has no parameter {parameter!r}; its parameters: "
                             f"{', '.join(kind.parameters)}")
        check = kind.parameters[parameter]
        if not check(value):
            raise ValueError(f"{parameter}={value!r} is out of range for attack {name!r}: use {check.__doc__}")
    return parameters


def build_attack(spec: Mapping[str, Any], model: nn.Module,
                 device: torch.device | None = None) -> torchattacks.attack.Attack:
    """The torchattacks attack of ``spec`` against ``model`` (which takes images in [0, 1], see
    :class:`~networks.defense.normalized.NormalizedClassifier`)."""
    parameters = attack_parameters(spec)
    attack = ATTACKS[spec["name"]].factory(model, **parameters)
    if device is not None:
        attack.set_device(device)
    return attack


def shard_seed(seed: int, split: str, shard: int) -> int:
    """A 63-bit seed that depends only on ``(seed, split, shard)``."""
    digest = hashlib.sha256(f"{seed}/{split}/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global generators (CPU and ``device``) seeded, restoring them afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def record_logits(model: nn.Module, attacks: Mapping[str, Any], images: torch.Tensor,
                  labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean logits ``(N, C)`` and logits under every attack ``(N, K, C)`` of ``images`` in [0, 1].

    ``model`` must be in eval mode; each attack is a torchattacks attack on ``model``. The attacks need
    gradients: call this outside ``torch.inference_mode`` (the recording passes themselves run inside it).
    """
    with torch.inference_mode():  # the recording passes keep no autograd state (the cheapest forward)
        clean = model(images)
    adversarial = []
    for attack in attacks.values():
        adv_images = attack(images, labels)
        with torch.inference_mode():
            adversarial.append(model(adv_images))
    return clean, torch.stack(adversarial, dim=1)


__all__ = ["ATTACKS", "AttackKind", "attack_parameters", "build_attack", "record_logits", "seeded", "shard_seed"]
