"""Matrix functions of the article that SymPy lacks: element-wise σ and tanh, column softmax.

Each class carries two forms of one function: its mathematical definition entry by entry
(`_entry`, used by `.as_explicit()` and so by the printer check) and its fast NumPy form
(`_numpycode`, used by the oracle). `_latex` renders it as the article writes it.
"""
from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr


class MatrixFunction(MatrixExpr):
    """A function of one matrix expression, with the same shape as its argument."""

    def __new__(cls, arg):
        return super().__new__(cls, sp.sympify(arg))

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return self.arg.shape


class Elementwise(MatrixFunction):
    """A scalar function applied to every entry of a matrix expression."""

    latex_name: str = ""
    numpy_helper: str = ""  # name of the NumPy function in the oracle's namespace

    @staticmethod
    def scalar(a):
        raise NotImplementedError

    def _entry(self, i, j, **kwargs):
        return self.scalar(self.arg._entry(i, j, **kwargs))

    def _latex(self, printer):
        return rf"{self.latex_name}\left({printer._print(self.arg)}\right)"

    def _numpycode(self, printer):
        return f"{self.numpy_helper}({printer._print(self.arg)})"


class Sigmoid(Elementwise):
    """σ(a) = 1 / (1 + e^(-a)), the logistic sigmoid, entry by entry."""

    latex_name = r"\sigma"
    numpy_helper = "_sigmoid"

    @staticmethod
    def scalar(a):
        return 1 / (1 + sp.exp(-a))


class Tanh(Elementwise):
    """tanh, entry by entry."""

    latex_name = r"\tanh"
    numpy_helper = "_tanh"

    @staticmethod
    def scalar(a):
        return sp.tanh(a)


class Softmax(MatrixFunction):
    """Softmax of each column: entry (i, j) is exp(a_ij) / Σ_k exp(a_kj)."""

    def _entry(self, i, j, **kwargs):
        rows = self.arg.shape[0]
        k = sp.Dummy("k", integer=True)
        total = sp.Sum(sp.exp(self.arg._entry(k, j, **kwargs)), (k, 0, rows - 1))
        return sp.exp(self.arg._entry(i, j, **kwargs)) / total.doit()

    def _latex(self, printer):
        return rf"\operatorname{{softmax}}\left({printer._print(self.arg)}\right)"

    def _numpycode(self, printer):
        return f"_softmax_columns({printer._print(self.arg)})"
