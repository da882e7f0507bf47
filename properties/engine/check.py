"""What a check is, and the steps every check shares: run a case, take gradients."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..profiles import dtype_name
from . import failures as fail
from .component import Component, eids_for
from .driver import unusual_tensor
from .harness import Harness


@dataclass(frozen=True)
class Check:
    name: str
    statement: str
    eids: Callable[[Harness], tuple]
    body: Callable[[Harness, object], None]
    needs: Callable[[Component], tuple] = lambda c: ()  # other components the check also drives
    requires: Callable[[Component], tuple] = lambda c: ()  # capabilities of the component it needs
    share: float = 1.0  # the part of the profile's examples it draws (a costly check that finds its bugs early)


def all_eids(h: Harness) -> tuple:
    return eids_for(h.component, h.kind)


def evaluate(h: Harness, params, inputs):
    """The subject's outputs, the oracle's, and the tolerances for one case (computed when first
    read: tolerance.Deferred)."""
    reference = h.reference(params, inputs)
    actual = h.call(h.build(params), inputs, reference)
    return actual, reference, h.tolerances(params, inputs, reference)


def row_gradients(h: Harness, fn, inputs: dict, names: tuple, i: int, check: str) -> dict | None:
    """The gradient of output row i (a random cotangent) with respect to each named input, as float64
    arrays (None for an input it does not use); None if the subject's output has no autograd graph
    (noted as an observation of `check`)."""
    __tracebackhide__ = True
    given = h.tensors(inputs)
    for name in names:
        given[name].requires_grad_(True)
    return _gradients(h, lambda: fn(**given), {name: given[name] for name in names}, i, check)


def parameter_gradient(h: Harness, params: dict, inputs: dict, path: str, i: int, check: str) -> np.ndarray | None:
    """The gradient of output row i (a random cotangent) with respect to the parameter at `path`,
    the very tensor the builder was given; None if the output does not reach it through autograd
    (an adapter that copies its parameters into a module of its own; noted as an observation)."""
    __tracebackhide__ = True
    fn = h.build(params)
    tensor = next(t for p, t, _ in h.params if p == path)
    tensor.requires_grad_(True)
    given = h.tensors(inputs)
    grads = _gradients(h, lambda: fn(**given), {path: tensor}, i, check)
    return None if grads is None else grads[path]


def _gradients(h: Harness, call, wrt: dict, i: int, check: str) -> dict | None:
    __tracebackhide__ = True
    with h.subject_code("the subject, given inputs that require grad,"):
        out = call()
    out = out.get("out") if isinstance(out, dict) else out
    unusual = unusual_tensor(out)
    if unusual and isinstance(out, torch.Tensor):
        raise fail.form(h.where(), f"output 'out' is {unusual}, not a plain (strided, dense) torch.Tensor")
    if unusual or not out.requires_grad:  # not a tensor at all: the forward checks say so
        h.observations.add(f"no autograd graph: the Jacobian part of {check} is not checked")
        return None
    cotangent = torch.randn(out[:, i].shape, generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64).to(out.dtype).to(out.device)
    with h.subject_code("the subject's backward pass"):
        grads = torch.autograd.grad(out[:, i], list(wrt.values()), cotangent, allow_unused=True)
    if all(g is None for g in grads):
        h.observations.add(f"no autograd graph to {', '.join(wrt)}: the Jacobian part of {check} is not checked")
    return {name: None if g is None else g.detach().to("cpu", torch.float64).numpy() for name, g in zip(wrt, grads)}


def first_nonzero(grad: np.ndarray, where: np.ndarray, h: Harness, check: str, per_row: bool = True):
    """The first index where `where` holds and the gradient is not exactly 0, or None.

    Where the gradient is not finite at entries allowed to be non-zero (float16's backward of a
    LayerNorm on a constant row overflows, and the mask's 0 times that inf is NaN at the hidden
    entries too), an exact 0 cannot be told: such a batch row (per_row; else the whole array) is
    not judged, and that is noted. A NaN among finite allowed entries is a leak like any other."""
    broken = ~(np.isfinite(grad) | where)
    rows = broken.reshape(grad.shape[0], -1).any(-1) if per_row else np.full(grad.shape[0], broken.any())
    rows &= where.reshape(grad.shape[0], -1).any(-1) if per_row else where.any()  # rows with something to judge
    if rows.any():
        h.observations.add(f"a gradient is not finite where it may be non-zero (in {dtype_name(h.run.dtype)}"
                           f"): the Jacobian part of {check} is not judged on that sequence")
        where = where & ~rows.reshape((-1,) + (1,) * (grad.ndim - 1))
    leaked = where & (grad != 0)
    return tuple(int(x) for x in np.argwhere(leaked)[0]) if leaked.any() else None
