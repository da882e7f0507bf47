"""Whether a value is within a bound of the rule (tolerance.py): torch.testing's message where it is
not, and the bound that decided it. Verdicts (verdict.py), diagnoses (diagnosis.py, precision.py)
and the generic checks all judge through these two."""
from __future__ import annotations

import numpy as np
import torch

from . import tolerance as tol


def outside(value: np.ndarray, expected: np.ndarray, bound: tol.Tolerance) -> str:
    """torch.testing.assert_close's message where value is not within bound.atol of expected, else ""."""
    try:
        torch.testing.assert_close(torch.from_numpy(np.ascontiguousarray(value)),
                                   torch.from_numpy(np.ascontiguousarray(expected)), rtol=0, atol=bound.atol,
                                   equal_nan=True, msg=lambda m: m)
        return ""
    except AssertionError as exc:
        return str(exc)


def judged(value: np.ndarray, expected: np.ndarray, bound: tol.Tolerance) -> tuple[str, tol.Tolerance]:
    """(outside's message, the bound that decided it): a bound outside of which the subject is is
    refined first (Tolerance.final), so that a failing verdict is the rule's with all its samples."""
    mismatch = outside(value, expected, bound)
    if mismatch:
        bound = bound.final(tol.max_abs_diff(value, expected))
        mismatch = outside(value, expected, bound)
    return mismatch, bound
