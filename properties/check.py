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
