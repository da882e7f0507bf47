"""What a check is, and the steps every check shares: run a case, double a tolerance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import tolerance as tol
from .components import Component, eids_for
from .harness import Harness


@dataclass(frozen=True)
class Check:
    name: str
    statement: str
    applies: Callable[[Component], bool]
    eids: Callable[[Harness], tuple]
    body: Callable[[Harness, object], None]
    needs: Callable[[Component], tuple] = lambda c: ()  # other components the check also drives


def all_eids(h: Harness) -> tuple:
    return eids_for(h.component, h.kind)


def evaluate(h: Harness, params, inputs):
    """The subject's outputs, the oracle's, and the tolerances for one case."""
    reference = h.reference(params, inputs)
    actual = h.call(h.build(params), inputs, reference)
    return actual, reference, h.tolerances(params, inputs, reference)


def doubled(tolerances: dict) -> dict:
    """Two subject outputs each within atol of the truth differ by at most 2*atol."""
    return {k: tol.Tolerance(2 * t.atol, t.baseline_error, t.sensitivity, t.floor, t.dtype)
            for k, t in tolerances.items()}


def across(first: tol.Tolerance, second: tol.Tolerance, oracle_gap: float) -> tol.Tolerance:
    """The bound for two subject outputs on two different cases: each is within its tolerance of
    its own oracle, and the oracles differ by oracle_gap (inputs rounded to the dtype: a mean, a
    projection, are not exactly the values the other case implies)."""
    return tol.Tolerance(first.atol + second.atol + oracle_gap, max(first.baseline_error, second.baseline_error),
                         max(first.sensitivity, second.sensitivity), first.floor, first.dtype)
