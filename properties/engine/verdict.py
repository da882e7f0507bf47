"""The verdict of a comparison: every output the subject returned against the expected one, within
its bound of the rule (tolerance.py), and where it is not, the one failure message of its kind:
a value (the subject computes another function; the variant or mistake it matches, diagnosis.py)
or a precision (it computes in a lower dtype, precision.py). Part of the Harness (harness.py).
"""
from __future__ import annotations

import numpy as np

from ..profiles import dtype_name
from . import diagnosis
from . import failures as fail
from . import tolerance as tol
from .within import judged


def ill_conditioned(what: str, bound: tol.Tolerance) -> str:
    """The note of an output the rule does not judge (tolerance.ill_conditioned)."""
    return f"{what}: ill-conditioned in {dtype_name(bound.dtype)} on some examples, not judged there"


def precision_words(lower, dtype, by_error: bool, bits: float) -> str:
    """The kind of a failure a lower precision explains: the subject computes in `lower` in a `dtype`
    run, as its error (`by_error`) or its own outputs against the oracle show."""
    short = dtype_name(lower)
    how = (f"its error is what computing in {short} gives" if by_error else
           f"its own outputs on this example are {short}'s against the oracle")
    return (f"precision: the subject computes in {short} in a {dtype_name(dtype)} "
            f"run ({how}): about {bits:.0f} correct bits of "
            f"{tol.mantissa_bits(dtype)} (the subject computes in a lower precision)")


class Verdict:
    """Comparing the subject's outputs with the expected ones (a part of Harness)."""

    def compare(self, actual: dict, reference: dict, tolerances: dict, what: str = "the oracle", case=None,
                eid: str | None = None):
        """Every output the subject returned against `reference`, within its tolerance.

        With `case` (params, inputs) given, a failure is also tried as rounding in a lower dtype.
        `eid` names the equation a failure points at (default: the one that defines the output).
        Where the reference is NaN (a query allowed no key: no value in the article's math), the
        subject's value is not compared."""
        __tracebackhide__ = True
        for name, value in actual.items():
            expected = reference[name]
            # NaN in either is undefined in the spec: to_numpy has already failed a subject's NaN
            # where its oracle has a value, and masked the entries where the oracle has none
            undefined = np.isnan(expected) | np.isnan(value)
            value, expected = np.where(undefined, np.nan, value), np.where(undefined, np.nan, expected)
            if isinstance(tolerances, tol.Deferred) and tolerances.within_floor(name, value, expected):
                continue  # within any bound of the rule, without computing it
            mismatch, bound = judged(value, expected, tolerances[name])
            if not mismatch:
                continue
            if tol.ill_conditioned(bound, expected):
                self.observations.add(ill_conditioned(f"output {name!r}", bound))
                continue
            index = tuple(int(i) for i in np.unravel_index(np.nanargmax(np.abs(value - expected)), value.shape))
            variant = f"(variant {self.variant}) " if self.variant else ""
            unstable = self.nondeterminism()
            if unstable:
                raise unstable
            where, eid = f"{variant}{self.where()}", eid or self.output_eids.get(name, self.component.name)
            if case is not None and not diagnosis.reported():  # a shrinking step: the diagnosis is for the example reported
                raise fail.mismatch(where, eid, name, what, "value", [])
            raise fail.mismatch(where, eid, name, what, self.kind_of(case, name, value, expected, bound), [
                f"worst element {name}{list(index)}: subject {value[index]:.17g}, expected {expected[index]:.17g}",
                bound.describe(), *(line for line in mismatch.splitlines() if line.strip())])

    def kind_of(self, case, name: str, value: np.ndarray, expected: np.ndarray, bound: tol.Tolerance) -> str:
        """What a failing output is: a precision where a lower dtype explains it (as its error on
        `case` shows, or, without a case, the subject's numbers and other calls), else a value, with
        the variant or mistake it matches where the case is known."""
        with np.errstate(invalid="ignore"):
            off = np.abs(value - expected) > bound.atol
        lower = self.lower_precision(case, name, value, expected, bound.atol) if case is not None else \
            self.lower_dtype_shown(value, off)
        if lower is not None:
            bits = bound.bits_reached(tol.max_abs_diff(value, expected), tol.scale_of(expected))
            return precision_words(lower, self.run.dtype, case is not None, bits)
        kind = "value: the subject computes a different function"
        if case is None:
            return kind
        raw = self.raw.get(name)  # as returned: NaN where the spec has no value is the subject's own
        found = diagnosis.suggestion(self, case, name, raw if raw is not None and raw.shape == value.shape else value,
                                     bound)
        if found.startswith("precision"):  # a loss of precision of one evaluation order (mistakes.py)
            return found
        return kind + (f"; {found}" if found else "")
