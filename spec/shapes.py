"""The spec's shapes, checked: the dimension symbols read off named arrays (NumPy or torch), every
shape compared with the spec's symbolic one. Both oracles (spec/oracle.py, spec/torch_oracle.py) call it.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from .equation import Equation


class ShapeError(ValueError):
    """An array's shape disagrees with the spec's symbolic shape."""


def shape_checker(eq: Equation):
    """A function that reads the dimension symbols off named arrays and checks every shape.

    Built once per equation: each symbolic shape (H, H + I, …) is compiled to Python.
    """
    dims = eq.dimensions
    readers = []  # (array name, axis, dimension symbol): where each symbol is read
    for sym in eq.inputs:
        for axis, d in zip((-2, -1), sym.shape):
            if isinstance(d, sp.Symbol):
                readers.append((sym.name, axis, d))
    expected = [(sym.name, sym.shape, sp.lambdify(dims, sp.Tuple(*sym.shape))) for sym in eq.inputs]

    seen: dict[tuple, tuple[int, ...]] = {}  # shapes already checked -> their dimensions

    def check(arrays: dict[str, np.ndarray]) -> tuple[int, ...]:
        key = tuple(np.shape(arrays[name]) for name, _, _ in expected)
        if key in seen:
            return seen[key]
        found: dict[sp.Symbol, int] = {}
        for name, axis, d in readers:
            n = arrays[name].shape[axis]
            if found.setdefault(d, n) != n:
                raise ShapeError(f"{eq.eid}: {name} gives {d}={n}, but {d}={found[d]} elsewhere")
        values = tuple(found.get(d, 0) for d in dims)
        for name, shape, want in expected:
            got = arrays[name].shape[-2:]
            if got != tuple(want(*values)):
                raise ShapeError(f"{eq.eid}: {name} has shape {got}, the spec says "
                                 f"{shape} = {tuple(want(*values))}")
        seen[key] = values
        return values

    return check
