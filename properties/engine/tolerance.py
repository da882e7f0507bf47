"""The one tolerance rule of nlpspec.

For a subject run in dtype D on inputs already rounded to D, with `reference` the float64 oracle
on those same inputs, every output must satisfy

    max |subject - reference|  <=  K * max(baseline_error, sensitivity) + FLOOR_ULPS * eps(D) * scale

- baseline_error: max |baseline - reference|, where `baseline` is the oracle's own compiled NumPy
  code evaluated in D (NumPy's float32/float16, ml_dtypes' bfloat16). It is the error of a naive
  same-precision implementation, never of the subject itself. For float64 the oracle is that
  implementation, so the baseline runs in float32 and its error is scaled by eps(float64) /
  eps(float32): rounding error grows in proportion to eps, and a float64 subject that sums in
  another order than NumPy differs from it by about that much (input perturbation alone misses
  the rounding of partial sums, as a torch.nn.RNN against torch.nn.RNNCell run showed).
- sensitivity: max |oracle(inputs * (1 ± eps(D)) ± eps(D) * max|input|) - reference|, with the
  same change made to the inputs of every equation the oracle evaluates on the way (each
  sublayer's input, each LayerNorm's, each step's state): how far one rounding of every input
  and of every intermediate value, relative to the entry and to its array's scale, moves the
  exact result; and the oracle runs in rounded arithmetic (properties/engine/rounding.py): every
  floating-point operation inside it, each sum, product, mean and square root, rounds its
  result once more. Why inside: a LayerNorm of two nearly equal features x1 ≈ x2 ≈ 7.8 is
  decided by the rounding of their mean, which no change of its inputs reproduces (a shift of
  both moves the mean with them); the float64 oracle itself was 1.3e-14 off there, torch 1.4e-14,
  while input changes alone moved the result by 9e-16: 200 random cases of
  `benchmarks/margin.py` came within 4% of a false alarm. It measures the conditioning of the example, so that a long, chaotic recurrence
  does not turn rounding noise into a false alarm, in float64 too. Why the intermediate values
  and the array's scale: a LayerNorm of two nearly equal features (d_model = 2), fed shrunk
  inputs that are mostly 0 (which a relative change leaves at 0), deep in a stack of three
  layers, is decided by the rounding of the residual sum it normalises, which no change of the
  stack's own inputs reproduces reliably; the thorough profile found float32 and bfloat16 false
  alarms there, with bounds up to 20 times below torch's error.
  Sensitivity is the largest over SAMPLES = 8 samples, each with its own random signs: one sample
  can land on a cancellation of its roundings. torch.nn's pre-LN decoder (three layers,
  d_model = 2, float64) was 1.9e-14 off the oracle where the one sample then taken moved the
  result 3.8e-15, the smallest of 60 samples whose median was 3.2e-14: a false alarm in CI. A
  bound is judged on its first sample and refined to all eight only where the subject is outside
  it, so a passing case pays for one. Where the subject is outside the bound of eight by less
  than a factor TAIL = 16, TAIL_SAMPLES = 64 decide: the largest of 8 is near the 90th percentile
  of the samples' distribution, the largest of 64 near the 98th, and an ill-conditioned case has a
  heavy tail (a LayerNorm of two nearly equal features in bfloat16, whose derivative is of the
  order of ε/σ³: over 200 samples of a decoder layer's gradient the 90th percentile was 0.34, the
  99th 4.7, 14 times more, and torch, 2.6 off, was outside the bound of eight; thorough profile,
  seed 303617024). An error further out is decided on eight: no number of samples covers it.
- K = 4: FlashAttention's tests use 2 against a naive PyTorch implementation in the same dtype;
  fused kernels and different summation orders round differently from the per-operation
  rounding of the NumPy baseline, and the factor 4 leaves room for that, no more.
- FLOOR_ULPS * eps(D) * scale, with scale = max(1, max |reference|) and FLOOR_ULPS = 8: a few
  roundings of the output itself, for examples where the baseline happens to round exactly.

Gradients (the check `gradient`, properties/engine/gradient.py) obey the same rule, the output being
the vector-Jacobian product of the component under a drawn cotangent: the baseline is the spec's VJP
computed in D (autograd through the oracle's torch code, float32 scaled for float64), the sensitivity
the float64 VJP in rounded arithmetic: every input, parameter and cotangent and every equation's input
changed as above, and every operand of every operation of the forward and backward passes rounded
once more (rounding.py's RoundedOperands), a softmax's weights at their scores' scale (log P = s −
logsumexp(s) is formed at that scale by any kernel that recomputes P from a row statistic, as
FlashAttention's backward does), and half the samples take the backward passes of fused kernels
where they round differently from autograd's chain: a softmax's product in FlashAttention's form, its
row term from the output (rounding.FlashSoftmaxProduct), LayerNorm in its closed form
(rounding.LayerNormClosedForm). The float32 baseline alone is not enough: where float32 underflows a
saturated softmax row to an exact 0 gradient, its error says nothing of float64's cancellation (the
reference's own MHA gradient was 370 times such a bound).

An output that the rounding model moves by its whole scale (sensitivity >= scale, all samples taken)
has no correct bit in D: any value within that spread is as right as the spec's, and the spread
itself is heavy-tailed, so no number of samples bounds it. Such an output is noted as
ill-conditioned, not judged (`ill_conditioned`): a LayerNorm of two features in bfloat16 gave
gradients 30 times their own value apart across the samples (thorough profile, seed 303617024:
torch's pre-LN encoder layer, ∂/∂W_V, spec -4.6, torch -139, the largest of 64 samples 33 off).
The scale is max(1, max |reference|), so an output that is exactly 0 in exact arithmetic (the
gradient of a bias every key shares) stays judged: its rounding is far below 1.

An equation error shows as an error orders of magnitude above this. A failing output that the
same rule would accept for a lower precision D' (float32 for float64; float16 and bfloat16 for
float32), with the floor taken relative to the output itself (no `max(1, …)`, so that a bug on
the tiny values a shrunk example holds is not excused), is reported as a subject computing in
D' rather than D, with the number of correct bits it reached, provided some entry is off by at least 1/16
of one rounding in D' relative to itself (a smaller error everywhere is not D' arithmetic but a
value error: a bug with a tiny effect on that case).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

K = 4
SAMPLES = 8  # samples of rounded arithmetic behind a failing verdict
TAIL, TAIL_SAMPLES = 16, 64  # more samples for an error within TAIL times the bound of SAMPLES
FLOOR_ULPS = 8
LOWER = {torch.float64: (torch.float32,), torch.float32: (torch.float16, torch.bfloat16)}

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
                f"[{str(self.dtype).removeprefix('torch.')}, see properties/engine/tolerance.py]")

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
    floor = FLOOR_ULPS * eps(dtype) * scale_of(reference)
    return Tolerance(K * max(base, sens) + floor, base, sens, floor, dtype, len(perturbed), refine=refine)


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
        if not np.array_equal(found.astype(numpy_dtype(lower)).astype(np.float64), found):
            return False
    scaled = np.ldexp(np.frexp(found)[0], mantissa_bits(lower) // 2)  # the leading half of the bits
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
    own = max_abs_diff(lower, reference)
    large_enough = not smallest or relative >= LOWEST_ULPS * eps(dtype) or error >= LOWEST_ULPS * own > 0
    return large_enough and error <= K * own + FLOOR_ULPS * eps(dtype) * size
