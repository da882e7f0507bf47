"""The constants the article leaves free: LayerNorm's ε, the positional encoding's base, and the
window of the sliding-window causal mask (mask.sliding_window, which the article does not have).

The spec's equations name them (`LayerNorm` prints `constant("layernorm.epsilon")`, P reads
`constant("pe.base")`), and the compiled oracle reads their value when it runs, so one compiled
function serves every subject: a subject that declares its own (Hugging Face's BERT: ε = 1e-12)
is checked with `in_force(...)` around its checks.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import sympy as sp

DEFAULTS = {
    "layernorm.epsilon": sp.Rational(1, 10**5),  # PyTorch's default; the article leaves ε unstated
    "pe.base": sp.Integer(10000),                # the wavelengths run from 2π to 10000·2π
    "mask.window": sp.Integer(4096),             # Mistral 7B's sliding_window; a subject that fixes its own
                                                 # declares it, one that takes it as an input has it drawn
}

_IN_FORCE: ContextVar = ContextVar("constants", default={})


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
