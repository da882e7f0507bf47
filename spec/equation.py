"""An equation of the article: its E-id, a one-sentence statement, and a SymPy right-hand side.

`Equation.latex` comes from `sympy.latex` on the very objects the oracle compiles. Symbol names
are plain identifiers (`h_prev`, `Chat`); `LATEX_NAMES` says how the article writes them.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

# How the article writes the spec's identifiers (anything not listed prints as SymPy prints it).
LATEX_NAMES = {
    "x": "x_t", "h_prev": "h_{t-1}", "C_prev": "C_{t-1}", "h": "h_t", "C": "C_t", "y": "y_t",
    "f": "f_t", "i": "i_t", "Chat": r"\hat{C}_t", "o": "o_t",
    "r": "r_t", "z": "z_t", "htilde": r"\tilde{h}_t", "n": "n_t",
    "H_enc": "H", "alpha": r"\alpha", "C_ctx": "C", "B_mask": "B", "head": r"\mathrm{head}_n",
    "Z_heads": r"\operatorname{Concat}(\mathrm{head}_1, \ldots, \mathrm{head}_h)", "O": r"\operatorname{MultiHead}",
    "O_self": r"\operatorname{MultiHead}(X, X, X)", "O_mask": r"\operatorname{MultiHead}(Y, Y, Y; M)",
    "O_cross": r"\operatorname{MultiHead}(A, E, E)", "O_pre": r"\operatorname{MultiHead}(\operatorname{LN}(X))",
    "O_mask_pre": r"\operatorname{MultiHead}(\operatorname{LN}(Y); M)",
    "O_cross_pre": r"\operatorname{MultiHead}(\operatorname{LN}(A), E, E)",
    "W_c": "W", "b_c": "b", "F_Z": r"\operatorname{FFN}(Z)", "F_B": r"\operatorname{FFN}(B)",
    "F_Z_pre": r"\operatorname{FFN}(\operatorname{LN}(Z))", "F_B_pre": r"\operatorname{FFN}(\operatorname{LN}(B))",
}


class ArticleLatexPrinter(LatexPrinter):
    """sympy's LaTeX printer with the article's names for the spec's symbols."""

    def _print_MatrixSymbol(self, expr):
        return LATEX_NAMES.get(expr.name) or super()._print_MatrixSymbol(expr)

    def _print_OneMatrix(self, expr):
        return r"\mathbf{1}"

    def _print_HadamardProduct(self, expr):
        return r" \odot ".join(self.parenthesize(a, 1000) if a.is_MatAdd else self._print(a) for a in expr.args)

    def _as_ordered_terms(self, expr, order=None):
        """A sum's terms with the subtracted ones last: a_{i,j} - μ_i, not -μ_i + a_{i,j}."""
        terms = super()._as_ordered_terms(expr, order)
        return sorted(terms, key=lambda t: t.could_extract_minus_sign())

    def _print_MatrixElement(self, expr):
        """An entry of a row or column vector by its one index: γ_j, p_j (not γ_{0,j})."""
        rows, cols = expr.parent.shape
        if rows == 1 or cols == 1:
            parent = self.parenthesize(expr.parent, 1000, strict=True)
            return f"{{{parent}}}_{{{self._print(expr.j if rows == 1 else expr.i)}}}"
        return super()._print_MatrixElement(expr)

    def _print_Mul(self, expr):
        """0.044715 a^3, where sympy would write (8943 a^3) / 200000."""
        coefficient, rest = expr.as_coeff_Mul()
        if isinstance(coefficient, sp.Rational) and coefficient.q >= 1000 and rest != 1 and \
                not self._print_Rational(coefficient).startswith(r"\frac"):
            return f"{self._print_Rational(coefficient)} {self.parenthesize(rest, PRECEDENCE['Mul'])}"
        return super()._print_Mul(expr)

    def _print_Rational(self, expr):
        """A constant with a power of ten below it as the article writes one: 10^{-5}, 0.044715."""
        q = int(expr.q)
        places = next((k for k in range(3, 16) if 10 ** k % q == 0), None)
        if q >= 1000 and places is not None:
            if expr.p == 1 and q == 10 ** places:
                return f"10^{{-{places}}}"
            return f"{float(expr):.{places}f}".rstrip("0")
        return super()._print_Rational(expr)


def latex(expr) -> str:
    """LaTeX of a spec expression, in the article's notation (terms in the order written)."""
    return ArticleLatexPrinter({"order": "none"}).doprint(expr)


@dataclass(frozen=True)
class Equation:
    """One equation: `lhs = rhs`, a MatrixSymbol defined by a matrix expression.

    A few equations define several symbols at once (self.qkv: Q, K and V): then lhs and rhs are
    tuples of the same length, and the compiled function returns a tuple.
    """

    eid: str
    statement: str
    lhs: sp.MatrixSymbol | tuple
    rhs: sp.Basic | tuple
    variant_of: str | None = None  # E-id this equation replaces in a named variant

    @property
    def targets(self) -> tuple[sp.MatrixSymbol, ...]:
        return self.lhs if isinstance(self.lhs, tuple) else (self.lhs,)

    @property
    def expressions(self) -> tuple:
        return self.rhs if isinstance(self.rhs, tuple) else (self.rhs,)

    @cached_property
    def inputs(self) -> tuple[sp.MatrixSymbol, ...]:
        """The matrix symbols the right-hand side reads, sorted by name."""
        found = set().union(*(e.atoms(sp.MatrixSymbol) for e in self.expressions))
        return tuple(sorted(found, key=lambda s: s.name))

    @cached_property
    def dimensions(self) -> tuple[sp.Symbol, ...]:
        """The dimension symbols (H, I, …) of the shapes, and any the right-hand side names."""
        dims = set()
        for s in (*self.targets, *self.inputs):
            for d in s.shape:
                dims |= sp.sympify(d).free_symbols
        for e in self.expressions:
            dims |= {d for d in e.free_symbols if not isinstance(d, sp.MatrixSymbol)}
        return tuple(sorted(dims, key=lambda d: d.name))

    @property
    def shapes(self) -> dict[str, tuple]:
        """Symbolic shape of every symbol, the defined ones included."""
        return {s.name: tuple(s.shape) for s in (*self.inputs, *self.targets)}

    @property
    def latex(self) -> str:
        return r",\quad ".join(f"{latex(l)} = {latex(r)}" for l, r in zip(self.targets, self.expressions))

    @cached_property
    def definitions(self) -> tuple:
        """The entry-by-entry definitions (sympy Eq) of the spec's functions that the right-hand side
        applies (σ, softmax, LN, a mask, …), each from the function's own `_entry` on an argument of
        the shape it is applied to, in order of use."""
        found = []
        for e in self.expressions:
            for node in sp.preorder_traversal(e):
                if hasattr(node, "defined"):
                    found += [eq for eq in node.defined() if eq not in found]
        return tuple(found)

    @property
    def definitions_latex(self) -> tuple[str, ...]:
        return tuple(ArticleLatexPrinter().doprint(eq) for eq in self.definitions)


@dataclass(frozen=True)
class Composition:
    """A structure built from equations (a sequence of cells, a stack, …), stated as relations.

    Its oracle is NumPy code that chains the compiled equations, at the end of the module that
    states it (`spec.architectures`, `spec.attention`, `spec.transformer`).
    """

    eid: str
    statement: str
    relations: tuple  # sympy Eq objects, for the reader and the LaTeX

    @property
    def latex(self) -> str:
        return r",\quad ".join(ArticleLatexPrinter().doprint(r) for r in self.relations)


CATALOGUE: dict[str, Equation | Composition] = {}
DEFINED_IN: dict[str, str] = {}  # E-id -> the spec module that defines it (the article's section)


def define(eid: str, statement: str, lhs, rhs, variant_of: str | None = None) -> Equation:
    """Create an equation and enter it in the catalogue under its E-id."""
    if eid in CATALOGUE:
        raise ValueError(f"E-id {eid!r} defined twice")
    eq = Equation(eid, statement, lhs, rhs, variant_of)
    CATALOGUE[eid], DEFINED_IN[eid] = eq, sys._getframe(1).f_globals["__name__"]
    return eq


def compose(eid: str, statement: str, *relations) -> Composition:
    """Create a composition and enter it in the catalogue under its E-id."""
    if eid in CATALOGUE:
        raise ValueError(f"E-id {eid!r} defined twice")
    comp = Composition(eid, statement, relations)
    CATALOGUE[eid], DEFINED_IN[eid] = comp, sys._getframe(1).f_globals["__name__"]
    return comp
