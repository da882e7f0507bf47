"""The precision diagnosis: whether a subject that fails computes in a lower precision than it was
given (float32 in a float64 run, float16 or bfloat16 in a float32 one), told from one that computes
another function by the numbers it returns and by its error, on this case and on fresh ones. Part of
the Harness (harness.py), whose calls, raw outputs, companions and oracle it reads.
"""
from __future__ import annotations

import numpy as np

from . import lower_dtype
from . import tolerance as tol
from .cases import on_values
from .failures import SubjectFailure
from .oracle import InNumPy
from .trees import nested_map
from .within import judged


class Precision:
    """Which lower dtype, if any, explains a failure (a part of Harness)."""

    def returned_lower(self, value: np.ndarray, off: np.ndarray):
        """The lower dtype whose numbers the subject returned, or None (see lower_dtype.returned_in):
        wherever this output disagrees (`off`), or in the whole of another output of its last call
        (PyTorch's tutorial computes P in float32 and adds it to X in float64). How a subject computing
        in a lower precision is told from one that computes another function, in any check."""
        seen = [value[off]] + [a.ravel() for a in self.raw.values() if a.shape != value.shape or not
                               np.array_equal(a, value, equal_nan=True)]
        return next((lower for lower in lower_dtype.LOWER.get(self.run.dtype, ())
                     if any(lower_dtype.returned_in(found, lower) for found in seen)), None)

    def lower_dtype_shown(self, value: np.ndarray, off: np.ndarray):
        """For a check that is not the oracle: the lower dtype the subject's numbers (where `off`) or
        its calls on this example against the oracle show it computes in, or None."""
        return self.returned_lower(value, off) or self.precision_of_calls()

    def lower_precision(self, case, name: str, value: np.ndarray, expected: np.ndarray, atol: float):
        """The lower dtype the subject computes in, as this output of the oracle comparison on `case`
        shows, or None: it returns that dtype's numbers and its error is one computing in it gives, or
        (for a lower dtype whose rounding is finer than the grid of the drawn values, float32 under
        float64) its error is within that dtype's, here and on fresh cases. A float16 error is of the
        size of that grid, so under float32 only the numbers tell."""
        with np.errstate(invalid="ignore"):
            lower = self.returned_lower(value, np.abs(value - expected) > atol)
        if lower is not None:
            return lower if self.explained_in(lower, case, name, value, expected) else None
        return next((lower for lower in lower_dtype.LOWER.get(self.run.dtype, ())
                     if tol.eps(lower) < lower_dtype.GRID / 16
                     and self.explained_in(lower, case, name, value, expected, smallest=False)
                     and self.within_lower_on_fresh_cases(lower, case)), None)

    FRESH_CASES = 8

    def within_lower_on_fresh_cases(self, lower, case) -> bool:
        """On FRESH_CASES new cases of the same shapes (every float entry uniform in [-1, 1], masks and
        token ids kept, inputs that were equal kept equal), is the subject's error always within what
        computing in `lower` gives? A wrong equation can be tiny on a shrunk case; on generic values it
        is not, while a subject computing (partly) in `lower` stays within it."""
        rng, kept = np.random.default_rng(0), (list(self.calls), dict(self.raw))
        try:
            for _ in range(self.FRESH_CASES):
                params = self.round(self.without_absent(nested_map(
                    on_values(lambda a: rng.uniform(-1, 1, a.shape)), case[0])))
                inputs, drawn = {}, []
                for key, a in case[1].items():
                    same = next((inputs[k] for k, b in drawn if b.shape == a.shape and np.array_equal(a, b)), None)
                    inputs[key] = same if same is not None else a if a.dtype.kind != "f" else \
                        self.round(rng.uniform(-1, 1, a.shape))
                    drawn.append((key, a))
                expected = self.oracle(params, inputs)
                try:
                    actual = self.call(self.build(params), inputs, expected)
                except SubjectFailure:
                    return False
                if not all(self.explained_in(lower, (params, inputs), name, value, expected[name], smallest=False)
                           for name, value in actual.items()):
                    return False
            return True
        finally:
            self.calls, self.raw = kept

    def precision_of_calls(self):
        """For a check that compares the subject with itself: the lower dtype its calls on this example
        show against the oracle (the first output outside the tolerance), or None if they show none."""
        for other in self.companions:
            found = other.precision_of_calls()
            if found is not None:
                return found
        for _, inputs, expected, outputs, params in self.calls:
            if params is None:
                continue
            bounds = self.tolerances(params, inputs, expected)
            for name, value in outputs.items():
                undefined = np.isnan(expected[name]) | np.isnan(value)
                value, reference = np.where(undefined, np.nan, value), np.where(undefined, np.nan, expected[name])
                mismatch, bound = judged(value, reference, bounds[name])
                if mismatch and not tol.ill_conditioned(bound, reference):
                    return self.lower_precision((params, inputs), name, value, reference, bound.atol)
        return None

    def explained_in(self, lower, case, name: str, value: np.ndarray, reference: np.ndarray,
                     smallest: bool = True) -> bool:
        """Does rounding in `lower` explain the error of an output of the oracle check?"""
        error, relative = tol.max_abs_diff(value, reference), lower_dtype.max_relative_diff(value, reference)
        own = InNumPy(self.oracle).in_dtype(*case, lower)[name]
        return lower_dtype.explained_by(error, relative, reference, own, lower, smallest)
