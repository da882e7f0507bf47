"""Whether a failure is a lower dtype's arithmetic (float32 in a float64 run, float16 or bfloat16 in
a float32 one) rather than another function: the numbers the subject returns (`returned_in`) and the
size of its error (`explained_by`), judged by the rule (tolerance.py) for the lower dtype, its floor
relative to the output itself. The precision diagnosis (precision.py) and the gradient check use them.
"""
from __future__ import annotations

import numpy as np
import torch

from . import tolerance as tol

LOWER = {torch.float64: (torch.float32,), torch.float32: (torch.float16, torch.bfloat16)}
LOWEST_ULPS = 1 / 16  # below this, a relative error is too small to be arithmetic in the lower dtype


def max_relative_diff(actual: np.ndarray, reference: np.ndarray) -> float:
    """max |actual - reference| / |reference| over the defined, nonzero entries of the reference."""
    keep = ~np.isnan(reference) & (reference != 0)
    return float(np.max(np.abs(actual[keep] - reference[keep]) / np.abs(reference[keep]))) if keep.any() else 0.0


GRID = 2.0 ** -15  # the drawn values are multiples of their bound / (2^15 - 1) (engine/strategies.py)


def returned_in(values: np.ndarray, lower: torch.dtype) -> bool:
    """Are these values (the subject's, where it disagrees) all exactly numbers of `lower`, and not
    all so short that any dtype holds them? A subject computing in float32 and cast up returns float32
    numbers; one computing in float64 does so with probability about 2^-29 per entry. Values of half
    `lower`'s mantissa bits or fewer (0, 0.5, 0.75: what shrunk examples give) tell nothing."""
    found = values[np.isfinite(values)]
    if not found.size:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.array_equal(found.astype(tol.numpy_dtype(lower)).astype(np.float64), found):
            return False
    scaled = np.ldexp(np.frexp(found)[0], tol.mantissa_bits(lower) // 2)  # the leading half of the bits
    return not np.array_equal(scaled, np.round(scaled))


def explained_by(error: float, relative: float, reference: np.ndarray, lower: np.ndarray, dtype: torch.dtype,
                 smallest: bool = True) -> bool:
    """Would computing in `dtype` explain this error? `lower` is the oracle evaluated in `dtype`;
    `relative` the subject's largest relative error.

    Only an error of the size that dtype's arithmetic makes: at most the rule's bound for it, and
    either, on some entry, at least 1/16 of one rounding relative to that entry (a value rounded to
    dtype is off by up to half a unit, and below 1/16 with probability 1/8), or at least 1/16 of the
    error the oracle itself makes in dtype on this case (a subject that computes only part of it in
    dtype: Keras' GRU, whose matmuls return float32 in a float64 run). A smaller error, a bug with a
    tiny effect on this case, is a value error. With smallest=False, any error up to that bound (for
    a dtype much finer than the drawn values' grid, where a wrong equation's error is larger)."""
    defined = reference[~np.isnan(reference)]
    size = float(np.max(np.abs(defined))) if defined.size else 0.0
    own = tol.max_abs_diff(lower, reference)
    large_enough = not smallest or relative >= LOWEST_ULPS * tol.eps(dtype) or error >= LOWEST_ULPS * own > 0
    return large_enough and error <= tol.K * own + tol.floor(dtype, size)
