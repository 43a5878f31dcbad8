"""Model size and multiply-add counts, as the DARTS-family papers report them."""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

# fvcore's "flop" for these operators is one multiply-add (MAC). Normalisation, pooling and element-wise
# operators are left out, the convention of the papers' "multiply-add operations" (convolutions and
# fully connected layers only).
_MULTIPLY_ADD_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(parameter.numel() for parameter in module.parameters())


def count_multiply_adds(model: nn.Module, example_input: torch.Tensor) -> int:
    """Multiply-adds of one forward pass, counted by fvcore over convolutions and linear layers.

    The model is run in eval mode (so training-only branches such as auxiliary heads are skipped).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's import scripts functions with the deprecated torch.jit
        from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing warnings (torch.jit deprecation) are not the user's concern
            analysis = FlopCountAnalysis(model, example_input)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            logging.getLogger("fvcore").setLevel(logging.ERROR)
            by_operator = analysis.by_operator()
    finally:
        model.train(was_training)
    return int(sum(count for name, count in by_operator.items() if name in _MULTIPLY_ADD_OPERATORS))
