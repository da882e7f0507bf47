"""MathML of the spec, converted (latex2mathml) from the very LaTeX the page shows beside it:
one printer, spec.equation.ArticleLatexPrinter, and one route, so the two cannot say different
things (a second printer, sympy's MathML, once drifted: `blockmatrix` where the LaTeX had
[h_{t−1}; x_t], h_{−1+t} where it had h_{t−1})."""
from __future__ import annotations

import latex2mathml.converter
import sympy as sp

from nlpspec.spec.equation import Composition, Equation, latex


def block(tex: str) -> str:
    """A block <math> element."""
    return latex2mathml.converter.convert(tex, display="block")


def inline(tex: str) -> str:
    """An inline <math> element."""
    return latex2mathml.converter.convert(tex)


def mathml(entry: Equation | Composition) -> str:
    """The entry as one block <math> element."""
    return block(entry.latex)


def definitions(entry: Equation | Composition) -> list[str]:
    """The entry-by-entry definitions of the functions the entry applies, each a block <math>."""
    return [block(tex) for tex in getattr(entry, "definitions_latex", ())]


def shape_latex(shape) -> str:
    """A symbol's shape as the article writes it: H \\times (H + I)."""
    return r" \times ".join(rf"\left({latex(d)}\right)" if sp.sympify(d).is_Add else latex(d) for d in shape)
