"""How the architecture parameters get their gradient: first order, unrolled second order, Amended-DARTS.

DARTS (arXiv:1806.09055, Sec. 2.3) approximates the bilevel problem
``min_alpha L_val(w*(alpha), alpha)  s.t.  w*(alpha) = argmin_w L_train(w, alpha)`` either by ignoring the
dependence of ``w*`` on alpha (first order, Eq. 5 with xi = 0) or by one unrolled virtual weight step (second
order, Eqs. 6-8, with the Hessian-vector product by central finite differences). Amended-DARTS
(arXiv:1910.11831, Sec. 3) starts from the exact gradient given by the implicit function theorem,
``dL_val/dalpha - H_alpha_w H^-1 grad_w L_val``, and replaces ``H^-1`` by ``eta * H``, which keeps a
non-negative inner product with the true term.

Each strategy is a callable ``strategy(network, train_batch, val_batch, weight_optimizer)`` returning the
gradient of every ``network.arch_parameters()`` entry (and the validation loss it evaluated); only the
gradients each pass needs are computed (passes that only need the alpha gradient do not compute weight
gradients). ``network`` is a :class:`~networks.nas.search_space.SearchNetwork` (anything with
``arch_parameters()``, ``named_weight_parameters()`` and a forward returning logits that accepts
``detach_arch=True``).

Several processes (DDP): ``torch.autograd.grad`` results are never all-reduced by DDP, so the strategies
average, across processes, every gradient whose global value the formula needs (the train gradient of
the virtual step, ``v``, ``H v``) and the final architecture gradient: every process then applies the
same architecture update, and the result is the single-process formula on the global batch (except for
BatchNorm statistics, which stay per process).

:func:`build_arch_gradient` builds one by name: ``first_order``, ``second_order`` or ``amended``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

__all__ = [
    "ARCH_GRADIENTS",
    "AmendedGradient",
    "ArchGradient",
    "ArchGradientResult",
    "FirstOrderGradient",
    "SecondOrderGradient",
    "average_across_processes",
    "build_arch_gradient",
    "check_sgd_virtual_step",
]

Batch = Sequence[torch.Tensor]
Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Reduce = Callable[[list[torch.Tensor]], list[torch.Tensor]]

#: Finite-difference step numerator: the step is ``FINITE_DIFFERENCE_SCALE / ||direction||`` (DARTS Eq. 8).
FINITE_DIFFERENCE_SCALE = 0.01


def average_across_processes(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The mean of each tensor over all processes of the default process group (one flat all-reduce).

    Returns the tensors unchanged when torch.distributed is not initialised or has one process.
    """
    tensors = list(tensors)
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not tensors:
        return tensors
    flat = torch.cat([tensor.detach().reshape(-1) for tensor in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    return [chunk.view_as(tensor) for chunk, tensor in zip(flat.split([t.numel() for t in tensors]), tensors, strict=True)]


class ArchGradientResult(NamedTuple):
    """``gradients``: one per architecture parameter; ``loss``: the L_val evaluated; both averaged over
    processes."""

    gradients: list[torch.Tensor]
    loss: torch.Tensor


def _global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))


# The search network has ~1,400 weight tensors: per-tensor Python arithmetic on them costs thousands of
# kernel launches per step, more than a forward pass on a GPU. The helpers below use the multi-tensor
# ``torch._foreach_*`` kernels (those of torch.optim) instead: a few launches per list.
def _shifted(tensors: Sequence[torch.Tensor], direction: Sequence[torch.Tensor], step: float) -> list[torch.Tensor]:
    """``[t + step * d]`` as new tensors (no autograd history)."""
    with torch.no_grad():
        return list(torch._foreach_add(list(tensors), list(direction), alpha=step))


def _central_difference(plus: Sequence[torch.Tensor], minus: Sequence[torch.Tensor], step: float) -> list[torch.Tensor]:
    """``[(p - m) / (2 * step)]``."""
    difference = torch._foreach_sub(list(plus), list(minus))
    torch._foreach_div_(difference, 2 * step)
    return list(difference)


def _finite_difference_step(direction: Sequence[torch.Tensor], scale: float) -> float:
    """``scale / ||direction||`` (0 when the direction is zero, which makes the correction vanish)."""
    norm = float(_global_norm(direction))
    return scale / norm if norm > 0 else 0.0


class ArchGradient(abc.ABC):
    """Base class of the strategies. Subclasses implement :meth:`compute` and set :attr:`name`.

    Args:
        criterion: loss of ``(logits, targets)``; cross-entropy by default.
        reduce: averages a list of tensors over processes (:func:`average_across_processes` by default).
        finite_difference_scale: the central differences step ``scale / ||direction||`` along a direction
            (0.01 in DARTS and Amended-DARTS). Tests of exactness on tiny networks use a smaller one: there a
            step of norm 0.01 can cross a ReLU or max-pool kink whose jump dominates the difference.
    """

    name: ClassVar[str]

    def __init__(self, criterion: Criterion = F.cross_entropy, reduce: Reduce = average_across_processes,
                 finite_difference_scale: float = FINITE_DIFFERENCE_SCALE) -> None:
        self.criterion = criterion
        self.reduce = reduce
        self.finite_difference_scale = float(finite_difference_scale)

    def __call__(self, network: nn.Module, train_batch: Batch, val_batch: Batch,
                 weight_optimizer: torch.optim.Optimizer | None = None) -> ArchGradientResult:
        """The architecture gradient for one arch step (``train_batch`` from the weight split, ``val_batch``
        from the architecture split; ``weight_optimizer`` supplies the virtual step of second order)."""
        gradients, loss = self.compute(network, train_batch, val_batch, weight_optimizer)
        # The loss rides along in the same all-reduce: every process sees the same (mean) loss, so a NaN on
        # one process stops all of them at the same step instead of leaving the others waiting.
        *gradients, loss = self.reduce([*(g.detach() for g in gradients), loss.detach().reshape(1)])
        return ArchGradientResult(gradients, loss.reshape(()))

    def check_weight_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Raise ``ValueError`` if this strategy cannot model ``optimizer`` (most need nothing of it)."""
        return None

    @abc.abstractmethod
    def compute(self, network: nn.Module, train_batch: Batch, val_batch: Batch,
                weight_optimizer: torch.optim.Optimizer | None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-process gradients of the architecture parameters and the validation loss."""

    # ------------------------------------------------------------------------------- helpers
    def _loss(self, network: nn.Module, batch: Batch, weights: dict[str, torch.Tensor] | None = None,
              detach_arch: bool = False) -> torch.Tensor:
        """The loss on ``batch``, with the network weights replaced by ``weights`` when given.

        ``detach_arch=True`` for passes that need no alpha gradient: alpha is then a constant of the graph,
        which saves the activations kept for its gradient.
        """
        images, targets = batch[0], batch[1]
        options = {"detach_arch": True} if detach_arch else {}
        if weights is None:
            logits = network(images, **options)
        else:
            logits = functional_call(network, weights, (images,), options)
        return self.criterion(logits, targets)

    def _alpha_gradient_at(self, network: nn.Module, batch: Batch, names: Sequence[str],
                           point: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """grad_alpha of the loss on ``batch`` with the weights set to ``point`` (no weight gradients)."""
        loss = self._loss(network, batch, dict(zip(names, point, strict=True)))
        return list(torch.autograd.grad(loss, network.arch_parameters()))

    def _alpha_central_difference(self, network: nn.Module, batch: Batch, names: Sequence[str],
                                  weights: Sequence[torch.Tensor],
                                  direction: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``H_alpha_w @ direction`` of the loss on ``batch`` by a central difference of grad_alpha."""
        step = _finite_difference_step(direction, self.finite_difference_scale)
        if step == 0.0:
            return [torch.zeros_like(alpha) for alpha in network.arch_parameters()]
        gradient_plus = self._alpha_gradient_at(network, batch, names, _shifted(weights, direction, step))
        gradient_minus = self._alpha_gradient_at(network, batch, names, _shifted(weights, direction, -step))
        return _central_difference(gradient_plus, gradient_minus, step)


def _named_weights(network: nn.Module) -> tuple[list[str], list[torch.Tensor]]:
    names, weights = zip(*network.named_weight_parameters(), strict=True)
    return list(names), list(weights)


class FirstOrderGradient(ArchGradient):
    """DARTS first order: ``grad_alpha L_val(w, alpha)`` (one forward, one backward to alpha only)."""

    name = "first_order"

    def compute(self, network, train_batch, val_batch, weight_optimizer):
        loss = self._loss(network, val_batch)
        return list(torch.autograd.grad(loss, network.arch_parameters())), loss


def check_sgd_virtual_step(optimizer: torch.optim.Optimizer) -> None:
    """Raise ``ValueError`` unless ``optimizer`` is SGD without Nesterov momentum or dampening.

    DARTS' virtual step (arXiv:1806.09055, Eq. 6 as the official ``architect.py``) replays one step of the
    weight optimizer from its learning rate, momentum buffers and weight decay: that is SGD's update only.
    """
    wrapped = getattr(optimizer, "optimizer", optimizer)  # Lightning's LightningOptimizer wraps the optimizer
    unsupported = [f"{key}={group.get(key)}" for group in wrapped.param_groups
                   for key in ("nesterov", "dampening") if group.get(key)]
    if type(wrapped) is not torch.optim.SGD or unsupported:
        detail = ", ".join(sorted(set(unsupported))) or type(wrapped).__module__ + "." + type(wrapped).__name__
        raise ValueError(
            f"the weight optimizer is {detail}, but the second-order gradient replays one step of it, which it can "
            "do for torch.optim.SGD (momentum, weight decay) only; use torch.optim.SGD (DARTS' setting), or the "
            "first_order or amended gradient, which do not replay the weight step"
        )


class SecondOrderGradient(ArchGradient):
    """DARTS second order (unrolled), arXiv:1806.09055 Eqs. 6-8, as the official ``architect.py``.

    ``w' = w - xi * (mu * momentum_buffer + grad_w L_train(w, alpha) + wd * w)``: one step of the weight
    optimizer (SGD with momentum ``mu`` and weight decay ``wd``, read from its parameter groups and state;
    ``xi`` = its current learning rate); then
    ``grad = grad_alpha L_val(w', alpha) - xi * [grad_alpha L_train(w+) - grad_alpha L_train(w-)] / (2 eps)``
    with ``w+- = w +- eps * grad_w' L_val(w', alpha)`` and ``eps = 0.01 / ||grad_w' L_val||``.
    Four forward/backward passes (two of them to alpha only).
    """

    name = "second_order"

    def compute(self, network, train_batch, val_batch, weight_optimizer):
        if weight_optimizer is None:
            raise ValueError("weight_optimizer=None: the second-order gradient needs the weight optimizer (its "
                             "learning rate, momentum buffers and weight decay define the virtual step)")
        names, weights = _named_weights(network)
        arch = network.arch_parameters()
        train_loss = self._loss(network, train_batch, detach_arch=True)
        train_gradient = self.reduce(list(torch.autograd.grad(train_loss, weights)))
        xi, virtual = self.virtual_step(weights, train_gradient, weight_optimizer)
        loss = self._loss(network, val_batch, dict(zip(names, virtual, strict=True)))
        gradients = torch.autograd.grad(loss, [*arch, *virtual])
        alpha_gradient, v = list(gradients[: len(arch)]), self.reduce(list(gradients[len(arch):]))
        implicit = self._alpha_central_difference(network, train_batch, names, weights, v)
        return [g - xi * h for g, h in zip(alpha_gradient, implicit, strict=True)], loss

    def check_weight_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """The virtual step is one step of plain SGD (momentum and weight decay): refuse anything else."""
        check_sgd_virtual_step(optimizer)

    @staticmethod
    def virtual_step(weights: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor],
                     optimizer: torch.optim.Optimizer) -> tuple[float, list[torch.Tensor]]:
        """``(xi, w')``: the weights after one SGD step of ``optimizer`` (momentum and weight decay included),
        as leaf tensors that require grad. ``xi`` is the learning rate of the first weight's group."""
        check_sgd_virtual_step(optimizer)
        group_of = {parameter: index for index, group in enumerate(optimizer.param_groups)
                    for parameter in group["params"]}
        # Weights sharing a parameter group and having (or not) a momentum buffer are stepped together.
        buckets: dict[tuple[int, bool], list[int]] = {}
        for position, weight in enumerate(weights):
            if weight not in group_of:
                raise ValueError("optimizer does not hold every network weight; the second-order gradient needs "
                                 "its settings for each of them")
            buffer = optimizer.state.get(weight, {}).get("momentum_buffer")
            buckets.setdefault((group_of[weight], buffer is not None), []).append(position)
        virtual: list[torch.Tensor | None] = [None] * len(weights)
        with torch.no_grad():
            for (group_index, has_buffer), positions in buckets.items():
                group = optimizer.param_groups[group_index]
                lr, momentum = float(group["lr"]), float(group.get("momentum", 0.0) or 0.0)
                weight_decay = float(group.get("weight_decay", 0.0) or 0.0)
                bucket = [weights[position] for position in positions]
                direction = torch._foreach_add([gradients[position] for position in positions], bucket,
                                               alpha=weight_decay)
                if has_buffer and momentum:
                    buffers = [optimizer.state[weights[position]]["momentum_buffer"] for position in positions]
                    torch._foreach_add_(direction, buffers, alpha=momentum)
                for position, stepped in zip(positions, torch._foreach_add(bucket, direction, alpha=-lr),
                                             strict=True):
                    virtual[position] = stepped.requires_grad_(True)
        xi = float(optimizer.param_groups[group_of[weights[0]]]["lr"]) if len(weights) else 0.0
        return xi, virtual  # type: ignore[return-value]


class AmendedGradient(ArchGradient):
    """Amended-DARTS (arXiv:1910.11831): ``grad_alpha L_val(w) - eta * H_alpha_w H grad_w L_val(w)``.

    ``H`` and ``H_alpha_w`` are second derivatives of ``L_train`` (the weight-split loss, without weight
    decay). With ``v = grad_w L_val``: ``u = H v`` by a central difference of ``grad_w L_train`` at
    ``w +- e v`` (``e = 0.01 / ||v||``), then ``H_alpha_w u`` by a central difference of ``grad_alpha L_train``
    at ``w +- e' u`` (``e' = 0.01 / ||u||``). Five forward/backward passes, two of them to alpha only.

    Args:
        eta: the scale replacing ``H^-1`` by ``eta * H``; must be >= 0 (0 gives first order).
    """

    name = "amended"

    def __init__(self, eta: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta >= 0:
            raise ValueError(f"eta={eta!r}: the Amended-DARTS scale must be a number >= 0")
        self.eta = float(eta)

    def compute(self, network, train_batch, val_batch, weight_optimizer):
        names, weights = _named_weights(network)
        arch = network.arch_parameters()
        loss = self._loss(network, val_batch)
        gradients = torch.autograd.grad(loss, [*arch, *weights])
        alpha_gradient, v = list(gradients[: len(arch)]), self.reduce(list(gradients[len(arch):]))
        if self.eta == 0.0:
            return alpha_gradient, loss
        u = self.reduce(self.hessian_vector_product(network, train_batch, names, weights, v))
        amending = self._alpha_central_difference(network, train_batch, names, weights, u)
        return [g - self.eta * a for g, a in zip(alpha_gradient, amending, strict=True)], loss

    def hessian_vector_product(self, network: nn.Module, batch: Batch, names: Sequence[str],
                               weights: Sequence[torch.Tensor], v: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``H v`` of the loss on ``batch`` (H over the weights) by a central difference of grad_w."""
        step = _finite_difference_step(v, self.finite_difference_scale)
        if step == 0.0:
            return [torch.zeros_like(w) for w in weights]
        gradients = []
        for sign in (1.0, -1.0):
            point = [w.requires_grad_(True) for w in _shifted(weights, v, sign * step)]
            loss = self._loss(network, batch, dict(zip(names, point, strict=True)), detach_arch=True)
            gradients.append(torch.autograd.grad(loss, point))
        return _central_difference(gradients[0], gradients[1], step)


ARCH_GRADIENTS: dict[str, type[ArchGradient]] = {
    cls.name: cls for cls in (FirstOrderGradient, SecondOrderGradient, AmendedGradient)
}


def build_arch_gradient(name: str, *, eta: float = 0.1, criterion: Criterion = F.cross_entropy,
                        reduce: Reduce = average_across_processes,
                        finite_difference_scale: float = FINITE_DIFFERENCE_SCALE) -> ArchGradient:
    """The strategy called ``name`` (``eta`` is used by ``amended`` only).

    Raises:
        ValueError: an unknown name (the message lists the known ones) or an invalid ``eta``.
    """
    if name not in ARCH_GRADIENTS:
        raise ValueError(f"name={name!r} is not an architecture-gradient mode; use one of {', '.join(ARCH_GRADIENTS)}")
    options = {"criterion": criterion, "reduce": reduce, "finite_difference_scale": finite_difference_scale}
    amended = AmendedGradient(eta=eta, **options)  # checks eta whatever the mode, so a bad value never waits
    return amended if name == AmendedGradient.name else ARCH_GRADIENTS[name](**options)
