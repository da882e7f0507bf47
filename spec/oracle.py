"""The oracle engine: a spec expression compiled once to a batched NumPy function.

`compile_equation(eq)` lambdifies the right-hand side with `BatchedNumPyPrinter`; the result is
cached per equation, so every Hypothesis example reuses one function. The compiled function
takes the inputs by name as arrays of shape (..., rows, cols), reads the dimension symbols off
their shapes, checks every shape against the spec (a W of H×(H+I) must meet an [h, x] of
(H+I)×1), and returns the left-hand side. It computes in the inputs' dtype, so the same code
gives the float64 oracle and a same-precision baseline; given torch tensors, it runs the same
printed code on them (spec/torch_oracle.py), so every composition below is also the oracle on the
subject's device and differentiable by autograd.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp
from array_api_compat import is_torch_array

from .equation import Equation
from .functions import Hidden, Mask
from .kernels import EvaluationContext
from .printer import NAMESPACE, BatchedNumPyPrinter
from .shapes import ShapeError, shape_checker  # noqa: F401  (ShapeError: the oracle's error, importable here)


@cache
def compile_equation(eq: Equation):
    """The right-hand side of `eq` as a NumPy function of named arrays (cached per equation)."""
    args = [*eq.inputs, *eq.dimensions]
    fn = sp.lambdify(args, eq.rhs, modules=[NAMESPACE, "numpy"], printer=BatchedNumPyPrinter,
                     dummify=False, cse=True)

    check = shape_checker(eq)
    names = [s.name for s in eq.inputs]
    assert "context" not in names, f"{eq.eid}: an input named 'context' is the evaluation context's keyword"

    def evaluate(*, context: EvaluationContext | None = None, **arrays):
        if context is not None:
            return context.run(evaluate, **arrays)
        rounded = EvaluationContext.current().rounding
        if any(is_torch_array(v) for v in arrays.values()):  # the same expression on torch tensors
            from .torch_oracle import on_torch
            if rounded is not None:
                arrays = {k: rounded(v) if is_torch_array(v) and v.is_floating_point() else v for k, v in arrays.items()}
            return on_torch(eq, arrays)
        dims = check(arrays)
        if rounded is not None:
            arrays = {k: rounded(v) if np.asarray(v).dtype.kind == "f" else v for k, v in arrays.items()}
        return fn(*(arrays[n] for n in names), *dims)

    def looped():
        """evaluate for a loop whose arrays keep their shapes from call to call (a recurrent oracle's steps):
        NumPy arrays outside a rounding context are checked on the first call alone, and later calls go
        straight to the printed code."""
        dims = None

        def call(**arrays):
            nonlocal dims
            if dims is None:
                if EvaluationContext.current().rounding is not None or any(map(is_torch_array, arrays.values())):
                    return evaluate(**arrays)
                dims = check(arrays)
            return fn(*(arrays[n] for n in names), *dims)
        return call

    evaluate.__doc__ = f"{eq.eid}: {eq.statement}"
    evaluate.looped = looped
    evaluate.source = fn.__doc__
    evaluate.input_names = tuple(names)
    return evaluate


@cache
def compile_mask(eq: Equation):
    """The keys hidden by the mask `eq` adds to its scores, as a NumPy function of the arrays and sizes
    the mask reads, by name (extra names are ignored): True where the mask is -∞. It prints the mask's
    own NumPy form, the code the compiled equation applies, so one definition serves both."""
    (mask,) = eq.rhs.atoms(Mask)
    args = sorted(mask.free_symbols, key=lambda s: s.name)  # its matrices and sizes: B_mask; n, m; n, p
    fn = sp.lambdify(args, Hidden(mask), modules=[NAMESPACE, "numpy"], printer=BatchedNumPyPrinter, dummify=False)
    return lambda **named: fn(*(named[s.name] for s in args))


def evaluate_chain(equations, env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate equations in order, each defining its left-hand side for the ones after it."""
    env = dict(env)
    for eq in equations:
        fn = compile_equation(eq)
        values = fn(**{n: env[n] for n in fn.input_names})
        if isinstance(eq.lhs, tuple):
            env.update({target.name: value for target, value in zip(eq.targets, values)})
        else:
            env[eq.lhs.name] = values
    return env
