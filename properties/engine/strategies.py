"""Hypothesis strategies: sizes (1 included) and values (saturating magnitudes included).

Sizes are labelled draws; the arrays of a case are filled by `arrays` in one draw. Under `at_scale`
(the scale profile) the sizes are those where tiled kernels break instead: sequence lengths up to
4096 with the tile boundaries drawn often, head widths up to 256, d_model up to 1024.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from hypothesis import note
from hypothesis.control import current_build_context
from hypothesis import strategies as st

MAX_SIZE = 5      # hidden, input and output sizes, batch, sequence lengths: 1 … 5 (unless a draw says less)
MAGNITUDES = (0.5, 2.0, 8.0)  # bound on weights and inputs; 8 saturates every gate of a cell


def size(data, label: str, low: int = 1, high: int = MAX_SIZE) -> int:
    scale = _SCALE.get()
    if scale is None or label not in SCALE_SIZES:
        return data.draw(st.integers(low, high), label=label)
    drawn = data.draw(SCALE_SIZES[label], label=label)
    value = max(low, min(drawn, room(label, scale)))
    if value != drawn and current_build_context().is_final:
        note(f"{label} = {value} (drawn {drawn}: clamped to the budget)")
    scale[label] = value
    return value


# --- the scale profile: the sizes where tiled kernels break ---------------------------------------
TILES = tuple(2**k for k in range(4, 13))  # block sizes of tiled kernels: 16 … 4096
LONGEST, WIDEST_HEAD, WIDEST_MODEL = 4096, 256, 1024
BUDGET = 2**24  # entries of a case's largest array (B·h·n·m attention scores: 128 MiB in float64)


def tile_edges(limit: int) -> tuple[int, ...]:
    """Every tile size, one less and one more (63, 64, 65, 127, …), up to limit."""
    return tuple(sorted({t + d for t in TILES for d in (-1, 0, 1) if 1 <= t + d <= limit}))


def often(special, low: int, high: int):
    """An integer in [low, high], one of `special` half the time (Hypothesis's one_of)."""
    return st.one_of(st.sampled_from(special), st.integers(low, high))


SEQUENCE = often(tile_edges(LONGEST), 1, LONGEST)
HEAD_WIDTH = often((64, 128, 256, 32, 16, 8, 80, 96, 160, 192, 63, 65, 127, 129, 255), 1, WIDEST_HEAD)
SCALE_SIZES = {"B": st.integers(1, 2), "h": st.integers(1, 16), "n": SEQUENCE, "m": SEQUENCE, "d_k": HEAD_WIDTH,
               "d_v": HEAD_WIDTH, "d_kin": often((WIDEST_MODEL, 512, 768), 1, WIDEST_MODEL),
               "d_vin": often((WIDEST_MODEL, 512, 768), 1, WIDEST_MODEL), "d_ff": often(tile_edges(4096), 1, 4096)}


def room(label: str, drawn: dict) -> int:
    """The largest `label` the case has room for, given the sizes drawn before it: scores of
    B·h·n·m entries (n counted twice until m is drawn: self-attention has m = n) and an FFN of
    B·n·d_ff within BUDGET, d_model = h·d_k within WIDEST_MODEL. A clamp, not a filter: every draw
    gives a case, and the clamped sizes are powers of two, tile sizes themselves."""
    B, h, n, m = (drawn.get(k, 1) for k in ("B", "h", "n", "m"))
    limits = {"n": math.isqrt(BUDGET // (B * h)), "m": BUDGET // (B * h * n), "h": BUDGET // (B * n * max(n, m)),
              "d_k": WIDEST_MODEL // h, "d_ff": BUDGET // (B * n)}
    return max(1, limits.get(label, BUDGET))


_SCALE: ContextVar = ContextVar("scale", default=None)  # the sizes drawn so far in this case, at scale


@contextmanager
def at_scale(on: bool = True):
    """Within it (when on), `size` draws the scale profile's sizes; each case starts afresh."""
    token = _SCALE.set({} if on else None)
    try:
        yield
    finally:
        _SCALE.reset(token)


def magnitude(data) -> float:
    return data.draw(st.sampled_from(MAGNITUDES), label="magnitude")


# ln of the largest finite value of the run's dtype: exp overflows past it (about 710 in float64, 89 in
# float32, 11 in float16); the harness sets it around every draw
_OVERFLOW: ContextVar = ContextVar("overflow", default=float(np.log(np.finfo(np.float64).max)))


@contextmanager
def holding(var: ContextVar, value):
    """Within it, `var` holds `value`."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def overflow_at(point: float):
    return holding(_OVERFLOW, point)


def past_overflow(data, scale: float) -> float | None:
    """A bound for the inputs that puts attention scores or gate pre-activations past exp's overflow
    point in the run's dtype (up to 4 times it; scale: their size per unit of input bound), in a quarter
    of the cases; None (a tame case) in the others, which is what it shrinks to. The float64 oracle is
    stable there; a softmax that does not subtract the row's maximum, or a σ written as e^a/(1 + e^a),
    is not."""
    if not data.draw(st.sampled_from((False, False, False, True)), label="past exp's overflow"):
        return None
    return 4 * _OVERFLOW.get() / scale


FLOAT32_OVERFLOW = float(np.log(np.finfo(np.float32).max))


def past_square_overflow(data) -> float | None:
    """A bound for the inputs that puts their squares past the run's dtype's largest finite value
    (inputs past √max, 256 in float16, up to 4 times it), in a quarter of the cases; None in the
    others (what it shrinks to). A LayerNorm that squares or sums squares in float16 (E[x²] - E[x]²,
    mean((x - μ)²)) overflows there; torch's, which accumulates in float32, does not. Only in a dtype
    of smaller range than float32's (float16): bfloat16's range is float32's, so there an implementation
    accumulating in float32, as torch's does, overflows at the same point (and float64's is the oracle's)."""
    point = _OVERFLOW.get()
    if point >= FLOAT32_OVERFLOW - 1 or not data.draw(st.sampled_from((False, False, False, True)),
                                                      label="past the squares' overflow"):
        return None
    return 4 * math.exp(point / 2)


# eps of the run's dtype (float64's outside a run); the harness sets it around every draw, as the overflow point
_EPS: ContextVar = ContextVar("eps", default=float(np.finfo(np.float64).eps))


def rounding_at(eps: float):
    return holding(_EPS, eps)


def past_cancellation(data) -> float | None:
    """The ratio of a row's common offset to its spread at which the one-pass variance E[x²] - E[x]²,
    computed in the run's dtype, loses all its bits: twice 1/√eps (its error, about eps·offset², is then
    about 4 σ², while one rounding of the inputs moves the output by about eps·ratio = 2√eps of its scale,
    and the spread keeps about 1/(2√eps) roundings at the offset: 2896 in float32, 64 in float16, 23 in
    bfloat16), in a quarter of the cases; None (a tame case) in the others, what it shrinks to. The
    oracle's two-pass variance, mean((x - μ)²), is stable there; a LayerNorm whose variance is one pass in
    the run's dtype (Flax's use_fast_variance) is not. None in float64: there the ratio would be 1.3e8
    (no activation is that), and the rule's baseline, which runs in float32 (tolerance.baseline_dtype),
    could not even hold such a row's spread."""
    eps = _EPS.get()
    if eps <= np.finfo(np.float64).eps or not data.draw(st.sampled_from((False, False, False, True)),
                                                         label="past the variance's cancellation"):
        return None
    return 2 / math.sqrt(eps)


def squares_room() -> float:
    """A quarter of √(the run's dtype's largest value): the largest input whose square, and a sum of
    MAX_SIZE of them, stay finite in the run's dtype (64 in float16), so that past_cancellation's rows test the
    cancellation, not the overflow past_square_overflow draws."""
    return math.exp(_OVERFLOW.get() / 2) / 4


LEVELS = 2**15 - 1  # entries are multiples of bound / LEVELS


class Shape(tuple):
    """Where an array goes in a case: its shape and the bound of its entries."""

    def __new__(cls, shape, bound):
        return super().__new__(cls, (tuple(shape), float(bound)))


SEEDED_PAST = 6144  # bytes drawn one by one per draw (of Hypothesis's 8192 per example); more come from a seed


def raw_bytes(data, count: int, label: str) -> np.ndarray:
    """`count` random bytes: drawn one by one where they fit in Hypothesis's buffer (8 KiB of
    choices per example), so the shrinker works on each; past SEEDED_PAST (the scale profile's
    cases hold millions of entries), generated from a drawn seed, which the falsifying example
    prints. A case too large to draw byte by byte is shrunk by its sizes, not its entries."""
    if count <= SEEDED_PAST:
        drawn = st.binary(min_size=count, max_size=count).map(lambda raw: Entries(raw, label))
        return np.frombuffer(data.draw(drawn, label=label).raw, np.uint8)
    seed = data.draw(st.integers(0, 2**64 - 1), label=f"{label}: {count} bytes from seed")
    return np.random.default_rng(seed).integers(0, 256, count, dtype=np.uint8)


class Entries:
    """Drawn bytes; printed as a count, since the arrays they make are printed one by one."""

    def __init__(self, raw: bytes, label: str):
        self.raw, self.label = raw, label

    def __repr__(self):
        return f"<{len(self.raw)} bytes of {self.label}, printed below as arrays>"

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
    raw = raw_bytes(data, 2 * total, "entries")
    flat = np.clip(raw.view("<i2").astype(np.float64), -LEVELS, LEVELS) / LEVELS
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
