"""What a parameter a subject declares absent is drawn as: its identity in the spec's equations.

A layer without a parameter leaves out the operation that applies it: a bias or shift that is added
(β, b_hn) is left out by drawing it as 0, a gain that multiplies elementwise (γ) by drawing it as 1.
Which one a parameter is is read from the SymPy right-hand side of every equation that reads it, not
kept by hand: an entry of the parameter inside a sum is a term, inside a product a factor (one whose
index runs over a sum, X W, is a factor of a matrix product: a weight matrix, which has no such
identity). Functions of the spec (LN, a bias repeated on every row) are read entry by entry.
"""
from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from nlpspec.spec import CATALOGUE
from nlpspec.spec.equation import Equation

IDENTITY = {"term": 0.0, "factor": 1.0}
_i, _j = sp.symbols("i j", integer=True)


def _reads(node, name: str) -> bool:
    return any(s.name == name for s in node.atoms(sp.MatrixSymbol))


def roles(node, name: str) -> set[str]:
    """How the matrix symbol `name` enters `node`: "term", "factor", "matrix" (a factor of a matrix
    product), "other" (inside a function), or "bare" (node is the parameter itself, reshaped)."""
    if isinstance(node, sp.MatrixSymbol):
        return {"bare"} if node.name == name else set()
    if not isinstance(node, sp.Basic) or not _reads(node, name):
        return set()
    inner = [roles(a, name) if isinstance(a, sp.MatrixExpr) else set() for a in node.args]
    found = set().union(*inner) - {"bare"}
    bare = [k for k, r in enumerate(inner) if "bare" in r]
    if not bare:
        return found
    if isinstance(node, sp.MatAdd):
        return found | {"term"}
    if isinstance(node, sp.HadamardProduct):
        return found | {"factor"}
    if isinstance(node, sp.MatMul):
        matrices = [a for a in node.args if isinstance(a, sp.MatrixExpr)]
        return found | ({"bare"} if len(matrices) == 1 else {"matrix"})  # -b, b / 2: still b
    fresh = [sp.MatrixSymbol("_p" if k in bare else f"_a{k}", *a.shape) if isinstance(a, sp.MatrixExpr) else a
             for k, a in enumerate(node.args)]  # the function's own entry, on symbols of its arguments' shapes
    return found | _function_roles(node.func, tuple(fresh))


@cache
def _function_roles(func, args: tuple) -> set[str]:
    return _entry_roles(func(*args)[_i, _j], "_p", None, frozenset())


def _entry_roles(expr, name: str, parent, summed: frozenset) -> set[str]:
    if isinstance(expr, MatrixElement) and getattr(expr.parent, "name", None) == name:
        if parent is None:
            return {"bare"}
        if isinstance(parent, sp.Add):
            return {"term"}
        if isinstance(parent, sp.Mul):
            return {"matrix" if set(expr.indices) & summed else "factor"}
        return {"other"}
    if isinstance(expr, sp.Sum):
        summed = summed | {limit[0] for limit in expr.limits}
    coefficient = isinstance(expr, sp.Mul) and sum(not a.is_number for a in expr.args) == 1  # -x, x/2: still x
    found = set()
    for a in expr.args:
        found |= _entry_roles(a, name, parent if coefficient else expr, summed)
    return found


@cache
def identity(name: str) -> float | None:
    """The value that leaves out the parameter `name` (0 for a term, 1 for a factor) in every
    equation that reads it; None if it has none (a weight matrix, a parameter read otherwise)."""
    found = set()
    for eq in CATALOGUE.values():
        if isinstance(eq, Equation) and any(s.name == name for s in eq.inputs):
            for expr in eq.expressions:
                found |= roles(expr, name)
    return IDENTITY[found.pop()] if len(found) == 1 and found <= set(IDENTITY) else None
