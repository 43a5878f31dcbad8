"""The zoo's registry: every backbone constructor registers itself where it is defined, and one function builds
any of them by name.

A constructor ``f(num_classes, **options) -> nn.Module`` becomes the zoo's backbone ``f.__name__`` with the
:func:`register_backbone` decorator (timm's ``register_model`` pattern). :func:`build_backbone` is the one place that
builds a backbone by name (the model configs, ``conf/model/backbone/<name>.yaml``, and the classifier checkpoints
that rebuild themselves use it); it records on the network what it was built from (:class:`BackboneSpec`), so a
module can store the architecture with its checkpoint without repeating the constructor's signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

Constructor = TypeVar("Constructor", bound=Callable[..., nn.Module])

_CONSTRUCTORS: dict[str, Callable[..., nn.Module]] = {}
#: Options that name a file to read (the weights), not the architecture: left out of a network's spec.
FILE_OPTIONS = ("weights_path",)


@dataclass(frozen=True)
class BackboneSpec:
    """What :func:`build_backbone` built: the zoo name and the architecture options (every option but files)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


def register_backbone(constructor: Constructor) -> Constructor:
    """Register ``constructor`` as the zoo's backbone named after it (a decorator; the function is unchanged)."""
    name = constructor.__name__
    known = _CONSTRUCTORS.get(name)
    if known is not None and known.__module__ != constructor.__module__:
        raise ValueError(f"name={name!r}: backbone registered twice ({known.__module__}, {constructor.__module__}).")
    _CONSTRUCTORS[name] = constructor
    return constructor


def backbone_names() -> list[str]:
    """The registered backbone names, sorted."""
    return sorted(_CONSTRUCTORS)


def backbone_constructor(name: str) -> Callable[..., nn.Module]:
    """The constructor registered under ``name``; a ``ValueError`` listing the known names otherwise."""
    if name not in _CONSTRUCTORS:
        raise ValueError(f"name={name!r} is not a backbone of the zoo; known backbones: {', '.join(backbone_names())}.")
    return _CONSTRUCTORS[name]


def build_backbone(name: str, num_classes: int, **options: Any) -> nn.Module:
    """The zoo's backbone ``name`` with ``num_classes`` outputs; ``options`` go to its constructor (see the family's
    docstring: ``width_multiplier``, ``channels``, ``gate_layer``, ``weights_path``...).

    The network's ``backbone_spec`` (:class:`BackboneSpec`) records ``name`` and the options, files excepted.
    """
    network = backbone_constructor(name)(num_classes, **options)
    network.backbone_spec = BackboneSpec(name, {key: value for key, value in options.items()
                                                if key not in FILE_OPTIONS})
    return network


__all__ = ["FILE_OPTIONS", "BackboneSpec", "backbone_constructor", "backbone_names", "build_backbone",
           "register_backbone"]
