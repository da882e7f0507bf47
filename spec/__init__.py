"""nlpspec's specification: the article's equations as SymPy objects, and their oracle.

`CATALOGUE` maps every E-id to its entry, in the article's order. `python -m nlpspec.spec` prints it.
Each section's module ends with the oracle of what its equations compose (an RNN layer, multi-head
attention, a Transformer layer, the whole model): NumPy code chaining the compiled equations.
"""
if __name__ != "nlpspec.spec":  # one name per module: the folder is mapped into nlpspec (pyproject.toml)
    raise ImportError(f"import nlpspec.spec, not {__name__}: the checkout's spec/ is the package nlpspec.spec")
from . import architectures, attention, positional, recurrent, transformer  # noqa: F401  (importing defines the entries)
from .equation import CATALOGUE, Composition, Equation
from .oracle import compile_equation, compile_mask, evaluate_chain

__all__ = ["CATALOGUE", "Composition", "Equation", "compile_equation", "compile_mask", "evaluate_chain"]
