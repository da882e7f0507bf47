"""The one tolerance rule of nlpspec (docs/guide/tolerance.md: the rule in full, and the false alarms
that made each of its parts).

For a subject run in dtype D on inputs already rounded to D, with `reference` the float64 oracle
on those same inputs, every output must satisfy

    max |subject - reference|  <=  K * max(baseline_error, sensitivity) + FLOOR_ULPS * eps(D) * scale

- baseline_error: max |baseline - reference|, `baseline` the oracle's own NumPy code run in D: the
  error of a naive same-precision implementation (for float64, run in float32 and scaled by
  eps(float64) / eps(float32)).
- sensitivity: how far one rounding of every input and of every intermediate value moves the exact
  result: every input and every equation's input changed by one rounding (`perturb`), the oracle
  run in rounded arithmetic (properties/engine/rounding.py). The largest of SAMPLES samples, of
  TAIL_SAMPLES where the subject is outside that by less than TAIL times (`Tolerance.final`); a
  bound is judged on its first sample and refined only where the subject is outside it.
- K = 4 (FlashAttention's tests use 2); scale = max(1, max |reference|); FLOOR_ULPS = 8 (`floor`).

Gradients obey the same rule (properties/engine/gradient.py). An output that the rounding model
moves by its whole scale has no correct bit in D: not judged (`ill_conditioned`). A check that
compares two subject outputs, or carries a bound through a map, derives its bound here
(`Tolerance.doubled`, `plus`, `times`, `floor`), never by hand. Whether a failure is a lower
dtype's arithmetic: properties/engine/lower_dtype.py.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from ..profiles import dtype_name
K = 4
SAMPLES = 8  # samples of rounded arithmetic behind a failing verdict
TAIL, TAIL_SAMPLES = 16, 64  # more samples for an error within TAIL times the bound of SAMPLES
FLOOR_ULPS = 8

NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}


def numpy_dtype(dtype: torch.dtype):
    """The NumPy dtype that computes like `dtype` (ml_dtypes' for bfloat16, imported only then: it
    takes a second to load)."""
    if dtype == torch.bfloat16:
        import ml_dtypes
        return ml_dtypes.bfloat16
    return NUMPY_DTYPES[dtype]


def eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def floor(dtype: torch.dtype, scale: float = 1.0) -> float:
    """FLOOR_ULPS roundings of `dtype` at `scale`: the rule's floor, and the slack of a check that
    allows only the rounding of the output itself (a bound, a sum of `scale` terms of at most 1)."""
    return FLOOR_ULPS * eps(dtype) * scale


def mantissa_bits(dtype: torch.dtype) -> int:
    return 1 - round(math.log2(eps(dtype)))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over the entries where b (the reference) has a value; a non-finite a there
    (a baseline that overflowed) gives inf. NaN entries of b, undefined in the spec, are skipped."""
    defined = ~np.isnan(np.asarray(b, np.float64))
    if not defined.any():
        return 0.0
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))[defined]
    return float(np.max(np.nan_to_num(diff, nan=np.inf)))


@dataclass(frozen=True)
class Tolerance:
    """The bound for one output, and the parts it was made of.

    A check that compares two subject outputs, or carries a bound through a map, derives its bound
    here (`doubled`, `plus`, `times`), never by hand. `refine(n)` (None when it is final) gives the
    bound with n samples of rounded arithmetic: a bound is judged on one sample first and refined
    only where the subject is outside it (more samples only widen it, so the verdict is the one
    all the samples would give)."""

    atol: float
    baseline_error: float
    sensitivity: float
    floor: float
    dtype: torch.dtype
    samples: int = 1
    formula: str = ""  # how a derived bound was made; "" for the rule itself
    refine: Callable[[int], "Tolerance"] | None = field(default=None, compare=False, repr=False)

    def with_samples(self, n: int) -> "Tolerance":
        return self if self.refine is None else self.refine(n)

    def final(self, error: float | None = None) -> "Tolerance":
        """This bound from SAMPLES samples, or from TAIL_SAMPLES where `error` (the subject's) is outside
        it by less than a factor TAIL (itself where it is final)."""
        bound = self.with_samples(SAMPLES)
        if error is not None and bound.atol < error <= TAIL * bound.atol:
            bound = self.with_samples(TAIL_SAMPLES)
        return bound

    def rule(self) -> str:
        return self.formula or (f"{K}*max(baseline error {self.baseline_error:.3g}, sensitivity {self.sensitivity:.3g}"
                                f" (largest of {self.samples} sample{'s' if self.samples > 1 else ''})) "
                                f"+ floor {self.floor:.3g}")

    def describe(self) -> str:
        return (f"tolerance {self.atol:.3g} = {self.rule()} "
                f"[{dtype_name(self.dtype)}, see properties/engine/tolerance.py]")

    def _derived(self, atol: float, formula: str, remake: Callable[[], "Tolerance"], *parts: "Tolerance"):
        refinable = any(p.refine is not None for p in (self, *parts))
        return replace(self, atol=atol, formula=formula, refine=remake if refinable else None)

    def doubled(self) -> "Tolerance":
        """Two subject outputs each within this bound of the truth differ by at most twice it."""
        return self._derived(2 * self.atol, f"2 * ({self.rule()})", lambda n: self.with_samples(n).doubled())

    def plus(self, other: "Tolerance | None" = None, gap: float = 0.0) -> "Tolerance":
        """Two subject outputs on two cases, each within its bound of its own oracle, the oracles
        `gap` apart (inputs rounded to the dtype are not exactly the values the other case implies)."""
        parts = [f"({self.rule()})"] + ([f"({other.rule()})"] if other is not None else []) + \
            ([f"oracle gap {gap:.3g}"] if gap else [])
        return self._derived(self.atol + (other.atol if other is not None else 0.0) + gap, " + ".join(parts),
                             lambda n: self.with_samples(n).plus(None if other is None else other.with_samples(n), gap),
                             *([other] if other is not None else []))

    def times(self, factor: float, what: str) -> "Tolerance":
        """This bound carried through a linear map of norm `factor` (`what` names it)."""
        return self._derived(self.atol * factor, f"({self.rule()}) * {what} {factor:.3g}",
                             lambda n: self.with_samples(n).times(factor, what))

    def bits_reached(self, error: float, scale: float) -> float:
        """Correct bits of an output with this max error, relative to its scale."""
        return math.inf if error == 0 else max(0.0, -math.log2(error / scale))


class Deferred(Mapping):
    """The rule's bounds for a case's outputs (`reference`: the oracle's), made by `make` when first
    read: many checks compare only some of their calls, and the bounds cost more than the oracle."""

    def __init__(self, make: Callable[[], dict], reference: dict, dtype: torch.dtype):
        self.make, self.reference, self.dtype = make, reference, dtype

    @functools.cached_property
    def found(self) -> dict:
        return self.make()

    def __getitem__(self, key):
        return self.found[key]

    def __iter__(self):
        return iter(self.found)

    def __len__(self):
        return len(self.found)

    def within_floor(self, name: str, value: np.ndarray, expected: np.ndarray) -> bool:
        """Is every entry of `value` within the floor of `name`'s bound of `expected` (NaN where it is
        NaN)? Then it is within the bound itself (K * max(…) + floor), whatever its baseline and
        sensitivity."""
        with np.errstate(invalid="ignore"):
            close = np.abs(value - expected) <= output_rounding(self.reference[name], self.dtype).atol
        return bool((close | (np.isnan(value) & np.isnan(expected))).all())  # NaN against a number is not


def doubled(bounds: dict) -> dict:
    """Every output's bound doubled: two subject outputs compared with each other (when first read,
    where `bounds` are: at least the floor still, so an error within it still passes unread)."""
    if isinstance(bounds, Deferred):
        return Deferred(lambda: doubled(bounds.found), bounds.reference, bounds.dtype)
    return {name: bound.doubled() for name, bound in bounds.items()}


def scale_of(reference: np.ndarray) -> float:
    defined = reference[~np.isnan(reference)]
    return max(1.0, float(np.max(np.abs(defined)))) if defined.size else 1.0


def baseline_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the baseline runs in: the dtype itself, or float32 (scaled) for float64."""
    return torch.float32 if dtype == torch.float64 else dtype


def tolerance(reference: np.ndarray, baseline: np.ndarray | None, perturbed: list, dtype: torch.dtype,
              refine: Callable[[int], Tolerance] | None = None) -> Tolerance:
    """The rule above, for one output; `baseline` ran in `baseline_dtype(dtype)` (None: no baseline);
    `perturbed` holds the samples of rounded arithmetic taken so far, `refine(n)` gives the bound
    from n of them."""
    base = 0.0 if baseline is None else baseline_error(baseline, reference, dtype)
    sens = max((max_abs_diff(p, reference) for p in perturbed), default=0.0)
    least = floor(dtype, scale_of(reference))
    return Tolerance(K * max(base, sens) + least, base, sens, least, dtype, len(perturbed), refine=refine)


def baseline_error(baseline: np.ndarray, reference: np.ndarray, dtype: torch.dtype) -> float:
    """The baseline's error, scaled for float64 (the rule above), over the entries where it computed a
    value: an entry where the baseline overflowed although the reference lies within D's finite range
    is a naive implementation failing on an intermediate value (a LayerNorm's squares past √max in
    float16), not a rounding error of D; there the sensitivity alone bounds the subject. Where the
    reference itself is beyond D's range, the baseline's inf stays (no value of D is near it)."""
    limit = float(torch.finfo(baseline_dtype(dtype)).max)
    failed = ~np.isfinite(np.asarray(baseline, np.float64)) & (np.abs(np.asarray(reference, np.float64)) <= limit)
    return max_abs_diff(np.where(failed, reference, baseline), reference) * eps(dtype) / eps(baseline_dtype(dtype))


class Samples:
    """Samples of rounded arithmetic for a case, drawn when first needed: `draw(seed)` gives seed's."""

    def __init__(self, draw: Callable[[int], dict]):
        self.draw, self.drawn = draw, []

    def take(self, n: int) -> list:
        while len(self.drawn) < n:
            self.drawn.append(self.draw(len(self.drawn)))
        return self.drawn[:n]


def bounds(reference: dict, baseline: dict, samples: Samples, dtype: torch.dtype) -> dict:
    """The rule for each output of a case, on the first sample, refined to n samples on request."""
    def bound(name, n):
        return tolerance(reference[name], baseline[name], [s[name] for s in samples.take(n)], dtype,
                         None if n > 1 else lambda m, name=name: bound(name, m))
    return {name: bound(name, 1) for name in reference}


def ill_conditioned(bound: Tolerance, reference: np.ndarray) -> bool:
    """Does the rounding model move the output by its whole scale (no correct bit in D: not judged)?"""
    return bound.sensitivity >= scale_of(reference)


def output_rounding(reference: np.ndarray, dtype: torch.dtype) -> Tolerance:
    """Only the floor: a value passed on unchanged, rounded at most once more."""
    return tolerance(reference, None, [], dtype)


def random_signs(rng: np.random.Generator, shape) -> np.ndarray:
    """-1.0 or +1.0, each with probability 1/2."""
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0)


def perturb(array: np.ndarray, dtype: torch.dtype, rng: np.random.Generator) -> np.ndarray:
    """Each entry times (1 ± eps(D)), plus ± eps(D) times the array's largest finite magnitude, signs
    at random: one rounding's worth of change, of the entry and at the array's scale. (The largest
    finite one: an undefined batch row, NaN, made every entry NaN and the bound of the whole output
    infinite, so that a multi-head case with a fully padded sequence checked nothing.)"""
    plain = np.abs(np.asarray(array))
    scale = float(np.max(plain, where=np.isfinite(plain), initial=0.0))
    signs = random_signs(rng, (2,) + array.shape)
    return array * (1 + eps(dtype) * signs[0]) + eps(dtype) * scale * signs[1]
