"""The oracle on any device: the same spec expressions, printed by the same printer, run on torch
tensors instead of NumPy arrays (spec/oracle.py's code, a torch namespace in place of NumPy's).

`compile_equation_torch(eq)` returns a function of named tensors (float64, on any device) that
autograd differentiates: the spec's own derivative, for the gradient checks, and the oracle where the
shapes are large and the subject's device is faster than NumPy. tests/test_spec.py checks that it
agrees with the NumPy oracle to float64 rounding on every equation.
"""
from __future__ import annotations

import math
import types
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, reduce

import sympy as sp
import torch

from .constants import constant
from .equation import Equation
from .oracle import shape_checker
from .printer import BatchedNumPyPrinter

_DEVICE: ContextVar = ContextVar("device", default=torch.device("cpu"))  # where masks made from sizes go


def _block(rows):
    """torch.cat over the last two axes, after broadcasting the leading (batch) axes."""
    batch = torch.broadcast_shapes(*(a.shape[:-2] for row in rows for a in row))
    grid = [[a.expand(*batch, *a.shape[-2:]) for a in row] for row in rows]
    return torch.cat([torch.cat(row, dim=-1) for row in grid], dim=-2)


def _chain(*tensors):
    return reduce(torch.matmul, tensors)


def _causal_hidden(n, m, offset=0):
    return torch.ones(int(n), int(m), dtype=torch.bool, device=_DEVICE.get()).triu(1 + int(offset))


def _positional(like, concat=False):
    """P for a tensor (..., n, d), interleaved or sines then cosines, in like's dtype."""
    n, d = like.shape[-2:]
    col = torch.arange(d, device=like.device)
    if concat:
        half = (d + 1) // 2
        pair, sines = torch.where(col < half, col, col - half), col < half
    else:
        pair, sines = col // 2, col % 2 == 0
    i = torch.arange(n, device=like.device, dtype=like.dtype)[:, None]
    angle = i / constant("pe.base") ** ((2 * pair).to(like.dtype) / d)
    return torch.where(sines, torch.sin(angle), torch.cos(angle))


def _gelu(a):
    return a * (1 + torch.erf(a / math.sqrt(2))) / 2


def _gelu_tanh(a):
    return 0.5 * a * (1 + torch.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a * a * a)))


def _layernorm(x, gamma, beta, eps):
    fused = _FORMS.get().get("layernorm")
    if fused is not None:
        return fused(x, gamma, beta, eps)
    mean = x.mean(dim=-1, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=-1, keepdim=True)
    return gamma * centred / torch.sqrt(var + eps) + beta


def _mask_fill(scores, hidden):
    return scores.masked_fill(hidden, -math.inf)


_FORMS: ContextVar = ContextVar("forms", default={})


@contextmanager
def computed_as(**forms):
    """Within it, the printed code computes some of its functions another way, to the same value:
    softmax_product=fn runs every product softmax(S) V as fn(S, V); layernorm=fn runs LN as fn(x, γ, β, ε)
    (the gradient's rounding model takes the backward passes of fused kernels there)."""
    token = _FORMS.set({**_FORMS.get(), **forms})
    try:
        yield
    finally:
        _FORMS.reset(token)


def _softmax_rows(a):
    weights = torch.softmax(a, dim=-1)
    if "softmax_product" in _FORMS.get():
        weights._nlpspec_scores = a  # a product of these weights by values is computed_as's
    return weights


def _matmul(a, b):
    fused, scores = _FORMS.get().get("softmax_product"), getattr(a, "_nlpspec_scores", None)
    return torch.matmul(a, b) if fused is None or scores is None else fused(scores, b)


NAMESPACE = {"_block": _block, "_chain": _chain, "_matmul": _matmul, "_sigmoid": torch.sigmoid,
             "_tanh": torch.tanh, "_softmax_columns": lambda a: torch.softmax(a, dim=-2),
             "_softmax_rows": _softmax_rows, "_causal_hidden": _causal_hidden,
             "_mask_fill": _mask_fill, "_positional": _positional, "_relu": torch.relu, "_gelu": _gelu,
             "_gelu_tanh": _gelu_tanh, "_layernorm": _layernorm, "_constant": constant,
             "numpy": types.SimpleNamespace(swapaxes=torch.swapaxes)}


def on_torch(eq: Equation, arrays: dict):
    """compile_equation_torch(eq) on named arrays some of which are torch tensors: the others (a mask
    made in NumPy, a constant) become tensors on the same device first."""
    device = next(v.device for v in arrays.values() if isinstance(v, torch.Tensor))
    return compile_equation_torch(eq)(**{k: v if isinstance(v, torch.Tensor) else torch.as_tensor(v, device=device)
                                         for k, v in arrays.items()})


@cache
def compile_equation_torch(eq: Equation):
    """The right-hand side of `eq` as a torch function of named tensors (cached per equation)."""
    fn = sp.lambdify([*eq.inputs, *eq.dimensions], eq.rhs, modules=[NAMESPACE], printer=BatchedNumPyPrinter,
                     dummify=False, cse=True)
    check = shape_checker(eq)
    names = [s.name for s in eq.inputs]

    def evaluate(**tensors):
        dims = check(tensors)
        token = _DEVICE.set(next(iter(tensors.values())).device)
        try:
            return fn(*(tensors[n] for n in names), *dims)
        finally:
            _DEVICE.reset(token)

    evaluate.__doc__ = f"{eq.eid}: {eq.statement}"
    evaluate.input_names = tuple(names)
    return evaluate
