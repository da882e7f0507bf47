"""Hypothesis strategies: sizes (1 included) and values (saturating magnitudes included).

Sizes are labelled draws; the arrays of a case are filled by `arrays` in one draw.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from hypothesis import note
from hypothesis.control import current_build_context
from hypothesis import strategies as st

MAX_SIZE = 5      # hidden, input and output sizes, batch: 1 … 5
MAX_STEPS = 5     # sequence lengths: 1 … 5
MAGNITUDES = (0.5, 2.0, 8.0)  # bound on weights and inputs; 8 saturates every gate of a cell


def size(data, label: str, low: int = 1, high: int = MAX_SIZE) -> int:
    return data.draw(st.integers(low, high), label=label)


def magnitude(data) -> float:
    return data.draw(st.sampled_from(MAGNITUDES), label="magnitude")


# ln of the largest finite value of the run's dtype: exp overflows past it (about 710 in float64, 89 in
# float32, 11 in float16); the harness sets it around every draw
_OVERFLOW: ContextVar = ContextVar("overflow", default=float(np.log(np.finfo(np.float64).max)))


@contextmanager
def overflow_at(point: float):
    token = _OVERFLOW.set(point)
    try:
        yield
    finally:
        _OVERFLOW.reset(token)


def past_overflow(data, scale: float) -> float | None:
    """A bound for the inputs that puts attention scores or gate pre-activations past exp's overflow
    point in the run's dtype (up to 4 times it; scale: their size per unit of input bound), in a quarter
    of the cases; None (a tame case) in the others, which is what it shrinks to. The float64 oracle is
    stable there; a softmax that does not subtract the row's maximum, or a σ written as e^a/(1 + e^a),
    is not."""
    if not data.draw(st.sampled_from((False, False, False, True)), label="past exp's overflow"):
        return None
    return 4 * _OVERFLOW.get() / scale


LEVELS = 2**15 - 1  # entries are multiples of bound / LEVELS


class Shape(tuple):
    """Where an array goes in a case: its shape and the bound of its entries."""

    def __new__(cls, shape, bound):
        return super().__new__(cls, (tuple(shape), float(bound)))


class Entries:
    """The drawn bytes; printed as a count, since the arrays they make are printed one by one."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def __repr__(self):
        return f"<{len(self.raw) // 2} entries, printed below as arrays>"

    def _repr_pretty_(self, printer, cycle):  # Hypothesis's printer would spell out the bytes
        printer.text(repr(self))


def arrays(data, layout):
    """Fill a nested layout of `Shape`s (dicts and lists) with arrays, in one draw.

    One draw of bytes, read as 16-bit integers, gives every entry of the case: a few thousand
    entries cost one draw instead of thousands (element-wise `hypothesis.extra.numpy.arrays` made
    drawing 70 % of the suite's time), and the shrinker still works entry by entry, towards 0.
    The final (falsifying) example prints every array by its path in the case.
    """
    slots = list(_slots(layout))
    total = sum(int(np.prod(shape)) for _, (shape, _) in slots)
    raw = data.draw(st.binary(min_size=2 * total, max_size=2 * total).map(Entries), label="entries")
    flat = np.clip(np.frombuffer(raw.raw, dtype="<i2").astype(np.float64), -LEVELS, LEVELS) / LEVELS
    filled, start = {}, 0
    for path, (shape, bound) in slots:
        count = int(np.prod(shape))
        filled[path] = flat[start:start + count].reshape(shape) * bound
        start += count
    if current_build_context().is_final:
        for path, value in filled.items():
            note(f"{path} = {np.array2string(value, precision=6, separator=', ')}")
    return _assemble(layout, filled)


def case(data, params, inputs):
    """(params, inputs) of one case, filled in one draw; arrays print as params.W_f, inputs.x, …"""
    filled = arrays(data, {"params": params, "inputs": inputs})
    return filled["params"], filled["inputs"]


def _slots(layout, path=""):
    if isinstance(layout, Shape):
        yield path, layout
    elif isinstance(layout, dict):
        for key, value in layout.items():
            yield from _slots(value, f"{path}.{key}" if path else key)
    else:
        for i, value in enumerate(layout):
            yield from _slots(value, f"{path}[{i}]")


def _assemble(layout, filled, path=""):
    if isinstance(layout, Shape):
        return filled[path]
    if isinstance(layout, dict):
        return {k: _assemble(v, filled, f"{path}.{k}" if path else k) for k, v in layout.items()}
    return [_assemble(v, filled, f"{path}[{i}]") for i, v in enumerate(layout)]
