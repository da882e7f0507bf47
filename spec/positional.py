"""§4 Sinusoidal positional encoding: P[i, 2j] = sin(i / 10000^(2j/d)), P[i, 2j+1] = cos(same).

Positions i count from 0; column pair j shares one frequency. The encoder's input is X + P.
Variants: all sines then all cosines (Marian: pe.concat; tensor2tensor and fairseq share the layout
but space their frequencies by 1/(d/2 - 1), another function), and X scaled by √d_model before P
is added (pe.scaled_input).
"""
from __future__ import annotations

from array_api_compat import array_namespace, device
import sympy as sp
from sympy import Eq, IndexedBase, MatrixSymbol, sqrt, symbols

from .equation import compose, define
from .functions import MatrixFunction
from .constants import declare
from .oracle import compile_equation

n, d = symbols("n d_x", integer=True, positive=True)
i, j = symbols("i j", integer=True, nonnegative=True)
# the wavelengths run from 2π to 10000·2π; a subject may declare its own base
BASE = declare("pe.base", sp.Integer(10000), lambda v: v > 0, "more than 0 (the base of P's wavelengths)")


def angle(i, j, d):
    """The angle of position i in column pair j: i / 10000^(2j/d)."""
    return i / sp.Integer(BASE) ** (2 * j / d)


class PositionalEncoding(MatrixFunction):
    """P of the same shape as its argument (n×d), interleaved: sin in even columns, cos in odd.

    With concat=True, the variant layout: columns 0 … d/2-1 sines, d/2 … d-1 cosines."""

    def __new__(cls, like, concat=False):
        return sp.matrices.expressions.matexpr.MatrixExpr.__new__(cls, sp.sympify(like), sp.sympify(bool(concat)))

    def _entry(self, row, col, **kwargs):
        dim = self.shape[1]
        if self.args[1]:
            half = sp.ceiling(sp.Rational(1, 2) * dim)
            return sp.Piecewise((sp.sin(angle(row, col, dim)), col < half), (sp.cos(angle(row, col - half, dim)), True))
        pair = sp.floor(col / 2)
        return sp.Piecewise((sp.sin(angle(row, pair, dim)), sp.Eq(col % 2, 0)), (sp.cos(angle(row, pair, dim)), True))

    def _latex(self, printer):
        return "P" if not self.args[1] else r"P_{\mathrm{concat}}"

    def _numpycode(self, printer):
        return f"_positional({printer._print(self.args[0])}, {bool(self.args[1])})"


P = IndexedBase("P")
PE_SIN = compose("pe.sin", "Even columns hold sines of the position at geometrically spaced frequencies.",
                 Eq(P[i, 2 * j], sp.sin(angle(i, j, d))))
PE_COS = compose("pe.cos", "Odd columns hold the cosines of the same angles.",
                 Eq(P[i, 2 * j + 1], sp.cos(angle(i, j, d))))

X = MatrixSymbol("X", n, d)
PE_INPUT = define("pe.input", "The encoder's input is the embeddings plus P (the decoder's: the right-shifted "
                  "targets' embeddings plus P).", MatrixSymbol("X_P", n, d), X + PositionalEncoding(X))
PE_CONCAT = define("pe.concat", "Variant (Marian): all sines, then all cosines, at the article's frequencies "
                   "(tensor2tensor and fairseq use this layout with frequencies spaced by 1/(d/2 - 1): not "
                   "this variant).",
                   MatrixSymbol("X_P", n, d), X + PositionalEncoding(X, concat=True), variant_of="pe.input")
PE_SCALED = define("pe.scaled_input", "Variant: the embeddings are scaled by √d_model before P is added.",
                   MatrixSymbol("X_P", n, d), sqrt(d) * X + PositionalEncoding(X), variant_of="pe.input")


def input_equation(variants=()):
    """pe.input, or the variant in force: pe.scaled_input (√d X + P), else pe.concat (P's other layout)."""
    return PE_SCALED if "pe.scaled_input" in variants else PE_CONCAT if "pe.concat" in variants else PE_INPUT


def encoding(X, variants=()) -> dict:
    """The oracle of pe.input on a batch X (…, n, d): X_P under the variants in force, and P alone
    (in the layout in force, on X = 0)."""
    layout = PE_CONCAT if "pe.concat" in variants else PE_INPUT
    return {"X_P": compile_equation(input_equation(variants))(X=X),
            "P": compile_equation(layout)(X=array_namespace(X).zeros(X.shape[-2:], dtype=X.dtype, device=device(X)))}
