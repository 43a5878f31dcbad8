"""The official CenterNet checkpoints (``CenterNet-52_480000.pkl``, ``CenterNet-104_480000.pkl``) in this suite's names.

The official model (Duankaiwen/CenterNet ``models/py_utils/kp.py``: class ``kp``; ``models/CenterNet-52.py`` /
``-104.py``: its pooling modules) computes the same function as :class:`networks.detection.centernet.CenterNet`
with the same parameter shapes, registered under other names and in another order. Its checkpoints hold the
state dict of the model wrapped in ``DummyModule`` (``nnet/py_factory.py``), so every key starts with ``module.``;
``visionsuite.official_weights`` strips that prefix before :func:`official_key_to_suite` sees a key.

Name by name (``s`` is the stack; official -> suite):

* ``pre.0.conv`` / ``pre.0.bn`` (7x7 stem) -> ``backbone.stem.0.0`` / ``backbone.stem.0.1``; ``pre.1`` (stride-2
  residual) -> ``backbone.stem.1``.
* ``kps.s`` (``kp_module``, recursive) -> ``backbone.hourglasses.s``, at every level ``up1`` / ``low1`` / ``low2`` /
  ``low3`` -> ``upper`` / ``down`` / ``inner`` / ``up``; the residual blocks keep their names (``conv1``, ``bn1``,
  ``conv2``, ``bn2``, ``skip``).
* ``cnvs.s.conv`` / ``cnvs.s.bn`` -> ``backbone.feature_convs.s.0`` / ``.1``; ``inters_.s`` / ``cnvs_.s`` /
  ``inters.s`` -> ``backbone.inter_input.s`` / ``inter_features.s`` / ``inter_residual.s``.
* ``tl_cnvs.s`` / ``br_cnvs.s`` (``pool``) -> ``heads.s.tl_pool`` / ``heads.s.br_pool``: ``p1_conv1`` /
  ``p2_conv1`` -> ``conv_1`` / ``conv_2``, ``look_conv1`` / ``look_conv2`` -> ``look_1`` / ``look_2``,
  ``P1_look_conv`` / ``P2_look_conv`` -> ``cascade_conv_1`` / ``cascade_conv_2``.
* ``ct_cnvs.s`` (``pool_cross``) -> ``heads.s.ct_pool``: ``p1_conv1`` -> ``column_conv``, ``p2_conv1`` -> ``row_conv``.
* Both pools: ``p_conv1``, ``p_bn1``, ``conv1``, ``bn1``, ``conv2`` -> ``tail.pooled_conv``, ``tail.pooled_bn``,
  ``tail.skip_conv``, ``tail.skip_bn``, ``tail.out_conv``.
* ``{tl,br,ct}_heats.s``, ``{tl,br}_tags.s``, ``{tl,br,ct}_regrs.s`` -> ``heads.s.heatmaps.*``,
  ``heads.s.embeddings.*``, ``heads.s.offsets.*``: ``0.conv`` -> ``0`` and ``1`` -> ``2``.

(``convolution`` of ``models/py_utils/utils.py``, a conv + BN + ReLU module, holds ``conv`` and ``bn``; the suite's
``ConvBnRelu`` is a ``Sequential`` with the same two at ``0`` and ``1``.)

One tensor changes: the official code reads images with OpenCV, so its network sees **BGR** channels (normalised
with the BGR mean and std of ``db/coco.py``), while the suite's data modules give RGB. The converter reverses the
input channels of the stem convolution (``pre.0.conv.weight[:, ::-1]``): the converted network on an RGB image
computes exactly what the official network computes on the same image in BGR order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

#: The stem convolution whose input channels are reversed (BGR -> RGB).
FIRST_CONV = "pre.0.conv.weight"

_STACKED = re.compile(r"^(?P<group>[A-Za-z_]+)\.(?P<stack>\d+)\.(?P<rest>.+)$")

#: The official hourglass level's sub-modules (``kp_module``) and the suite's (``HourglassModule``).
_HOURGLASS_PARTS = {"up1": "upper", "low1": "down", "low2": "inner", "low3": "up"}

_TAIL = {"p_conv1.": "tail.pooled_conv.", "p_bn1.": "tail.pooled_bn.", "conv1.": "tail.skip_conv.",
         "bn1.": "tail.skip_bn.", "conv2.conv.": "tail.out_conv.0.", "conv2.bn.": "tail.out_conv.1."}
_CORNER_POOL = {**_TAIL,
                "p1_conv1.conv.": "conv_1.0.", "p1_conv1.bn.": "conv_1.1.",
                "p2_conv1.conv.": "conv_2.0.", "p2_conv1.bn.": "conv_2.1.",
                "look_conv1.conv.": "look_1.0.", "look_conv1.bn.": "look_1.1.",
                "look_conv2.conv.": "look_2.0.", "look_conv2.bn.": "look_2.1.",
                "P1_look_conv.": "cascade_conv_1.", "P2_look_conv.": "cascade_conv_2."}
_CENTER_POOL = {**_TAIL,
                "p1_conv1.conv.": "column_conv.0.", "p1_conv1.bn.": "column_conv.1.",
                "p2_conv1.conv.": "row_conv.0.", "p2_conv1.bn.": "row_conv.1."}
#: ``make_kp_layer``: ``convolution(3, ..., with_bn=False)`` (conv with bias + ReLU) then a 1x1 conv.
_HEAD = {"0.conv.": "0.", "1.": "2."}
_CONV_BN = {"conv.": "0.", "bn.": "1."}

#: Official per-stack module lists -> (suite module of stack ``{s}``, renames inside it).
_GROUPS: dict[str, tuple[str, Mapping[str, str]]] = {
    "cnvs": ("backbone.feature_convs.{s}.", _CONV_BN),
    "inters_": ("backbone.inter_input.{s}.", {"": ""}),
    "cnvs_": ("backbone.inter_features.{s}.", {"": ""}),
    "inters": ("backbone.inter_residual.{s}.", {"": ""}),
    "tl_cnvs": ("heads.{s}.tl_pool.", _CORNER_POOL),
    "br_cnvs": ("heads.{s}.br_pool.", _CORNER_POOL),
    "ct_cnvs": ("heads.{s}.ct_pool.", _CENTER_POOL),
    **{f"{kind}_heats": (f"heads.{{s}}.heatmaps.{kind}.", _HEAD) for kind in ("tl", "br", "ct")},
    **{f"{kind}_tags": (f"heads.{{s}}.embeddings.{kind}.", _HEAD) for kind in ("tl", "br")},
    **{f"{kind}_regrs": (f"heads.{{s}}.offsets.{kind}.", _HEAD) for kind in ("tl", "br", "ct")},
}
_STEM = {"pre.0.conv.": "backbone.stem.0.0.", "pre.0.bn.": "backbone.stem.0.1.", "pre.1.": "backbone.stem.1."}


def _by_prefix(name: str, table: Mapping[str, str]) -> str | None:
    for prefix in sorted(table, key=len, reverse=True):
        if name.startswith(prefix):
            return table[prefix] + name[len(prefix):]
    return None


def _hourglass_path(rest: str) -> str | None:
    """``low2.low2.up1.0.conv1.weight`` -> ``inner.inner.upper.0.conv1.weight``: rename the level parts, keep the
    residual blocks' own names (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``skip``, identical in both)."""
    parts = rest.split(".")
    depth = 0
    while depth < len(parts) and parts[depth] in _HOURGLASS_PARTS:
        parts[depth] = _HOURGLASS_PARTS[parts[depth]]
        depth += 1
    return ".".join(parts) if depth else None


def official_key_to_suite(name: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """The suite's name (and value) of the official CenterNet entry ``name`` (without ``module.``); ``None`` for a
    name the official model does not have. The stem convolution's input channels are reversed (BGR -> RGB)."""
    if name.startswith("pre."):
        suite = _by_prefix(name, _STEM)
        if suite is None:
            return None
        return suite, (tensor.flip(1) if name == FIRST_CONV else tensor)
    match = _STACKED.match(name)
    if match is None:
        return None
    group, stack, rest = match["group"], match["stack"], match["rest"]
    if group == "kps":
        path = _hourglass_path(rest)
        return None if path is None else (f"backbone.hourglasses.{stack}.{path}", tensor)
    if group not in _GROUPS:
        return None
    prefix, table = _GROUPS[group]
    inner = _by_prefix(rest, table)
    return None if inner is None else (prefix.format(s=stack) + inner, tensor)


#: Keys (official or suite) that only a network of two or more stacks has.
_LATER_STACK = re.compile(r"^(kps|cnvs|[a-z]{2}_(cnvs|heats|tags|regrs)|backbone\.(hourglasses|feature_convs)|heads)"
                          r"\.[1-9]\d*\.|^(inters_?|cnvs_|backbone\.inter_\w+)\.")
STACKS_ADVICE = ("The file's network has another number of stacks than this experiment's: the CenterNet-52 file "
                 "(one stack) goes with experiment=centernet52_coco, the CenterNet-104 file (two) with "
                 "experiment=centernet104_coco.")


def _advise(key: str) -> str | None:
    """What to do when ``key`` (the first unmatched official or network key) is found unmatched."""
    return STACKS_ADVICE if _LATER_STACK.match(key) else None


official_key_to_suite.advise = _advise  # type: ignore[attr-defined]  # read by visionsuite.official_weights

__all__ = ["FIRST_CONV", "STACKS_ADVICE", "official_key_to_suite"]
