"""nlpspec's specification: the article's equations as SymPy objects, and their oracle.

`CATALOGUE` maps every E-id to its entry, in the article's order. `python -m spec` prints it.
"""
from . import architectures, attention, positional, recurrent, transformer  # noqa: F401  (importing defines the entries)
from .equation import CATALOGUE, Composition, Equation
from .oracle import compile_equation, evaluate_chain

__all__ = ["CATALOGUE", "Composition", "Equation", "compile_equation", "evaluate_chain"]
