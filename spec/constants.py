"""The constants the article leaves free (LayerNorm's ε, the positional encoding's base, …), each
declared by the spec module whose equation reads it: `declare(name, default, domain, words)`.

The spec's equations name them (`LayerNorm` prints `constant("layernorm.epsilon")`, P reads
`constant("pe.base")`), and the compiled oracle reads their value when it runs, so one compiled
function serves every subject: a subject that declares its own (Hugging Face's BERT: ε = 1e-12)
is checked with `in_force(...)` around its checks. Importing any spec module imports them all
(spec/__init__.py), so every constant is declared before one is read.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

import sympy as sp

DEFAULTS: dict[str, sp.Expr] = {}  # name -> default, in the order declared
DOMAINS: dict[str, tuple[Callable[[float], bool], str]] = {}  # name -> (within, the domain in words)

_IN_FORCE: ContextVar = ContextVar("constants", default={})


def declare(name: str, default, within: Callable[[float], bool] = lambda v: True, domain: str = ""):
    """Declare a free constant: its default (exact, a SymPy number), and the values a subject may declare
    (`within`, stated in words as `domain`: properties/declarations.py rejects the others). Returns the default."""
    if name in DEFAULTS:
        raise ValueError(f"constant {name!r} is declared twice")
    DEFAULTS[name] = sp.sympify(default)
    DOMAINS[name] = (within, domain)
    return DEFAULTS[name]


@contextmanager
def in_force(values: dict):
    """Within it, the oracle uses these values of the named constants (the others keep their default)."""
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise KeyError(f"unknown constant {', '.join(map(repr, unknown))}; known: {', '.join(DEFAULTS)}")
    token = _IN_FORCE.set({**_IN_FORCE.get(), **values})
    try:
        yield
    finally:
        _IN_FORCE.reset(token)


def declared(name: str) -> float | None:
    """The value a subject put in force for a named constant (its declaration, `in_force`), or None."""
    found = _IN_FORCE.get()
    return float(found[name]) if name in found else None


def constant(name: str) -> float:
    """The value of a named constant in force now (its default outside `in_force`)."""
    found = _IN_FORCE.get()
    return float(found[name]) if name in found else float(DEFAULTS[name])
