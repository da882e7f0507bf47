"""The oracle on any device: the same spec expressions, printed by the same printer, run on torch
tensors instead of NumPy arrays (spec/kernels.py's kernels bound to torch, where NumPy's are bound to NumPy).

`compile_equation_torch(eq)` returns a function of named tensors (float64, on any device) that
autograd differentiates: the spec's own derivative, for the gradient checks, and the oracle where the
shapes are large and the subject's device is faster than NumPy. tests/test_spec.py checks that it
agrees with the NumPy oracle to float64 rounding on every equation.
"""
from __future__ import annotations

import math
import types
from contextvars import ContextVar
from functools import cache

import array_api_compat.torch
import sympy as sp
import torch

from .equation import Equation
from .kernels import EvaluationContext, Kernels
from .printer import BatchedNumPyPrinter
from .shapes import shape_checker

_DEVICE: ContextVar = ContextVar("device", default=torch.device("cpu"))  # where masks made from sizes go


class TorchKernels(Kernels):
    """spec/kernels.py's kernels on torch tensors. Where torch has one operation for a kernel, the torch
    oracle runs it rather than the kernel's composition: the same value to float64 rounding, and the
    operation the subjects run, whose backward autograd takes (the gradient oracle) and whose operands
    the gradient's rounding model rounds once each (properties/engine/rounding.py, which moreover knows
    torch's softmax); and the EvaluationContext's forms hook into the products, LayerNorm and the kernels
    the spec's modules add."""

    def sizes_device(self):
        return _DEVICE.get()

    def sigmoid(self, a):
        return torch.sigmoid(a)  # one operation; its backward reads σ's own output, as the subjects' does

    def relu(self, a):
        return torch.relu(a)  # its derivative at 0 is 0, nn.ReLU's (a maximum's splits the gradient at a tie)

    def softmax(self, a, axis):
        return torch.softmax(a, dim=axis)  # aten._softmax: the rounding model's softmax rule; float32 inside for half

    def softmax_rows(self, a):
        weights = super().softmax_rows(a)
        if "softmax_product" in EvaluationContext.current().forms:
            weights._nlpspec_scores = a  # a product of these weights by values is the form's
        return weights

    def mask_fill(self, scores, hidden):
        return scores.masked_fill(hidden, -math.inf)  # one operation with no operand but the scores

    def matmul(self, a, b):
        fused, scores = EvaluationContext.current().forms.get("softmax_product"), getattr(a, "_nlpspec_scores", None)
        return torch.matmul(a, b) if fused is None or scores is None else fused(scores, b)

    def layernorm(self, x, gamma, beta, eps):
        fused = EvaluationContext.current().forms.get("layernorm")
        return super().layernorm(x, gamma, beta, eps) if fused is None else fused(x, gamma, beta, eps)

    def added(self, fn):
        """A spec module's kernel (kernels.kernel), or the EvaluationContext's form of its name where it gives one."""
        def run(*args):
            form = EvaluationContext.current().forms.get(fn.__name__)
            return fn(self, *args) if form is None else form(*args)
        return run


NAMESPACE = TorchKernels(array_api_compat.torch).namespace(numpy=types.SimpleNamespace(swapaxes=torch.swapaxes))


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
