"""One rounding of every intermediate value, for the tolerance rule's sensitivity
(properties/engine/tolerance.py): NumPy arrays whose every floating-point ufunc result (a sum, a product,
a mean's reduction, a square root, …) is changed by a relative eps of random sign, as if it had
been rounded once more. Run the oracle on such arrays and its result moves as far as the
rounding of its intermediate values moves it (one sample of Monte Carlo arithmetic).

Operations that are not ufuncs (indexing keeps the type; a concatenation may not) pass values on
unchanged; `spec.oracle.rounding` makes every equation's inputs such arrays again.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

_STATE: ContextVar = ContextVar("rounded_arithmetic", default=None)  # (eps, rng) while active


class Rounded(np.ndarray):
    """An array whose ufunc results are rounded once more while `rounded_arithmetic` is active."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(a) if isinstance(a, Rounded) else a for a in inputs]
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, Rounded) else o for o in outs)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if method == "at":
            return result
        results = result if isinstance(result, tuple) else (result,)
        state = _STATE.get()
        rounded = []
        for k, value in enumerate(results):
            if state is not None and isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
                eps, rng = state
                value *= 1 + eps * np.where(rng.random(value.shape) < 0.5, -1.0, 1.0)
            elif state is not None and isinstance(value, np.floating):
                eps, rng = state
                value = value * (1 + eps * (-1.0 if rng.random() < 0.5 else 1.0))
            if outs and k < len(outs) and isinstance(outs[k], Rounded):
                value = outs[k]
            elif isinstance(value, np.ndarray):
                value = value.view(Rounded)
            rounded.append(value)
        return tuple(rounded) if isinstance(result, tuple) else rounded[0]


@contextmanager
def rounded_arithmetic(eps: float, rng: np.random.Generator):
    """Within it, every ufunc on `Rounded` arrays rounds its result once more by eps."""
    token = _STATE.set((eps, rng))
    try:
        yield
    finally:
        _STATE.reset(token)
