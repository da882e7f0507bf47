"""Matrix functions of the article that SymPy lacks: element-wise σ and tanh, column softmax.

Each class carries two forms of one function: its mathematical definition entry by entry
(`_entry`, used by `.as_explicit()` and so by the printer check) and its fast NumPy form
(`_numpycode`, used by the oracle). `_latex` renders it as the article writes it.
"""
from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from .constants import declare


# The generic argument, indices and sizes a function's definition is stated with (`definition`).
_n, _d = sp.symbols("n d", integer=True, positive=True)
_i, _j = sp.symbols("i j", integer=True)
_a = sp.MatrixSymbol("a", _n, _d)


def entry_symbol(expr) -> sp.Symbol:
    """The symbol standing for entry (i, j) of a spec function on its generic argument: σ(a)_{ij}
    (σ(a)_i of a column, σ(a)_j of a row)."""
    from .equation import latex
    rows, cols = expr.shape
    index = "i" if cols == 1 else "j" if rows == 1 else "ij"
    return sp.Symbol(rf"{{{latex(expr)}}}_{{{index}}}")


def stated(expr, entry) -> tuple:
    """expr's definition entry by entry: (Eq(expr_ij, entry),)."""
    return (sp.Eq(entry_symbol(expr), entry, evaluate=False),)


class MatrixFunction(MatrixExpr):
    """A function of one matrix expression, with the same shape as its argument."""

    @classmethod
    def definition(cls, shape=(_n, _d)) -> tuple:
        """Its entry (i, j) on an argument a of the given shape (the one it is applied to, so that a sum
        runs over the m keys of a row of scores), from `_entry` itself: what the docs print."""
        a = sp.MatrixSymbol("a", *shape)
        return stated(cls(a), cls(a)._entry(_i, _j))

    def defined(self) -> tuple:
        """The definition where it is applied: on an argument a of its shape, with its own options
        (pe.concat's layout of P)."""
        node = self.func(sp.MatrixSymbol("a", *self.arg.shape), *self.args[1:])
        return stated(node, node._entry(_i, _j))

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


class RowSoftmax(MatrixFunction):
    """Softmax of each row: entry (i, j) is exp(a_ij) / Σ_k exp(a_ik) (attention: over the keys j).

    A row whose entries are all -∞ (a query allowed no key) has no value: its entries are NaN.
    """

    def _entry(self, i, j, **kwargs):
        cols = self.arg.shape[1]
        k = sp.Dummy("k", integer=True)
        total = sp.Sum(sp.exp(self.arg._entry(i, k, **kwargs)), (k, 0, cols - 1))
        return sp.exp(self.arg._entry(i, j, **kwargs)) / total.doit()

    def _latex(self, printer):
        return rf"\operatorname{{softmax}}\left({printer._print(self.arg)}\right)"

    def _numpycode(self, printer):
        return f"_softmax_rows({printer._print(self.arg)})"


class Mask(MatrixExpr):
    """An additive mask: entry (i, j) is -∞ where position j is hidden from query i, else 0.

    Added to scores, it prints to NumPy as `where(hidden, -inf, scores)`, which is the same sum
    and keeps the scores' dtype. Subclasses say which entries are hidden.
    """

    def hidden(self, i, j, **kwargs):
        raise NotImplementedError

    def _entry(self, i, j, **kwargs):
        return sp.Piecewise((-sp.oo, self.hidden(i, j, **kwargs)), (0, True))

    @classmethod
    def generic(cls, shape=(_n, _d)):
        """The mask on generic operands of the given shape (n queries, m keys)."""
        raise NotImplementedError

    @classmethod
    def definition(cls, shape=(_n, _d)) -> tuple:
        return stated(cls.generic(shape), cls.generic(shape)._entry(_i, _j))

    def defined(self) -> tuple:
        return type(self).definition(self.shape)

    def _numpycode(self, printer):
        raise NotImplementedError("a mask is printed only as a term of a sum (see BatchedNumPyPrinter)")


class CausalMask(Mask):
    """mask.causal: query i sees keys j <= i, aligned at the upper left when n != m; with
    lower_right, keys j <= i + m - n (the last query aligned with the last key)."""

    def __new__(cls, n, m, lower_right=False):
        return super().__new__(cls, sp.sympify(n), sp.sympify(m), sp.sympify(bool(lower_right)))

    @property
    def shape(self):
        return self.args[:2]

    @property
    def offset(self):
        n, m, lower_right = self.args
        return m - n if lower_right else sp.Integer(0)

    def hidden(self, i, j, **kwargs):
        return sp.StrictGreaterThan(j, i + self.offset)

    @classmethod
    def generic(cls, shape=(_n, _d)):
        return cls(*shape)

    def defined(self) -> tuple:
        """Its own alignment: the lower-right mask is stated as such."""
        return stated(self, self._entry(_i, _j))

    def _latex(self, printer):
        return r"M_{\mathrm{causal}}" if not self.args[2] else r"M_{\mathrm{causal}}^{\searrow}"

    def hidden_numpy(self, printer):
        n, m = (printer._print(d) for d in self.args[:2])
        return f"_causal_hidden({n}, {m}, {printer._print(self.offset)})"


# the sliding window by default (Mistral 7B's sliding_window): a subject declares its own, or the suite draws it
WINDOW = declare("mask.window", sp.Integer(4096), lambda v: v >= 1 and v == int(v), "a whole number of positions, 1 or more")
_w = sp.Symbol("w", integer=True, positive=True)


class SlidingWindowMask(CausalMask):
    """mask.sliding_window: query i sees keys j with i - w < j <= i (itself and the w - 1 keys before
    it; w, the window, is the constant mask.window), aligned at the upper left as mask.causal; with
    lower_right, the window ends at the aligned key i + m - n (a KV cache's, as Hugging Face counts
    positions). Its entries read the window's default (`.as_explicit()`); the printed code reads the
    window in force when it runs (`_constant('mask.window')`), as LayerNorm reads its ε."""

    def hidden(self, i, j, window=WINDOW, **kwargs):
        seen_last = i + self.offset
        return sp.Or(sp.StrictGreaterThan(j, seen_last), sp.LessThan(j, seen_last - window))

    def defined(self) -> tuple:
        """Stated with the window w, not its default."""
        return stated(self, self._entry(_i, _j, window=_w))

    def _latex(self, printer):
        return r"M_{\mathrm{causal}}^{w}" if not self.args[2] else r"M_{\mathrm{causal}}^{\searrow, w}"

    def hidden_numpy(self, printer):
        n, m = (printer._print(d) for d in self.args[:2])
        return f"_causal_hidden({n}, {m}, {printer._print(self.offset)}, _constant('mask.window'))"


class GivenMask(Mask):
    """A mask given as a 0/1 matrix B of the same shape: entry (i, j) hidden where B_ij ≠ 0.

    With hide_zero, the other polarity: hidden where B_ij = 0 (B marks the keys a query may see)."""

    def __new__(cls, hidden, hide_zero=False):
        return super().__new__(cls, sp.sympify(hidden), sp.sympify(bool(hide_zero)))

    @property
    def shape(self):
        return self.args[0].shape

    def hidden(self, i, j, **kwargs):
        entry = self.args[0]._entry(i, j, **kwargs)
        return sp.Eq(entry, 0) if self.args[1] else sp.Ne(entry, 0)

    @classmethod
    def generic(cls, shape=(_n, _d)):
        return cls(sp.MatrixSymbol("B", *shape))

    def _latex(self, printer):
        given = printer._print(self.args[0])
        return rf"M\left(\lnot {given}\right)" if self.args[1] else rf"M\left({given}\right)"

    def hidden_numpy(self, printer):
        return f"({printer._print(self.args[0])} {'==' if self.args[1] else '!='} 0)"


class KeyPaddingMask(Mask):
    """Key padding: a column p (m×1, p_j ≠ 0 where key j is padding) hides key j from every one
    of n queries; the n×m mask has whole columns hidden."""

    def __new__(cls, padding, n):
        return super().__new__(cls, sp.sympify(padding), sp.sympify(n))

    @property
    def shape(self):
        return (self.args[1], self.args[0].shape[0])

    def hidden(self, i, j, **kwargs):
        return sp.Ne(self.args[0]._entry(j, 0, **kwargs), 0)

    @classmethod
    def generic(cls, shape=(_n, _d)):
        return cls(sp.MatrixSymbol("p", shape[1], 1), shape[0])

    def _latex(self, printer):
        return rf"M\left(\mathbf{{1}} {printer._print(self.args[0])}^\top\right)"

    def hidden_numpy(self, printer):
        swap = printer._module_format("numpy.swapaxes")
        return f"({swap}({printer._print(self.args[0])}, -1, -2) != 0)"


class Hidden(MatrixExpr):
    """The entries a mask hides: 1 where it adds -∞ (key j hidden from query i), else 0; the B of
    mask.given, for any mask. Printed to NumPy as the mask's own `hidden_numpy` (see oracle.compile_mask)."""

    @property
    def shape(self):
        return self.args[0].shape

    def _entry(self, i, j, **kwargs):
        return sp.Piecewise((1, self.args[0].hidden(i, j, **kwargs)), (0, True))

    def _numpycode(self, printer):
        return self.args[0].hidden_numpy(printer)


class ReLU(Elementwise):
    """max(a, 0), entry by entry (the FFN's activation)."""

    latex_name = r"\operatorname{ReLU}"
    numpy_helper = "_relu"

    @staticmethod
    def scalar(a):
        return sp.Max(a, 0)


class GELU(Elementwise):
    """a Φ(a) = a (1 + erf(a / √2)) / 2, entry by entry (the variant ffn.gelu; exact, not tanh)."""

    latex_name = r"\operatorname{GELU}"
    numpy_helper = "_gelu"

    @staticmethod
    def scalar(a):
        return a * (1 + sp.erf(a / sp.sqrt(2))) / 2


class GELUTanh(Elementwise):
    """GPT-2's tanh approximation of GELU (the variant ffn.gelu_tanh):
    a (1 + tanh(√(2/π) (a + 0.044715 a³))) / 2, entry by entry."""

    latex_name = r"\operatorname{GELU}_{\tanh}"
    numpy_helper = "_gelu_tanh"

    @staticmethod
    def scalar(a):
        return a * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (a + sp.Rational(44715, 10**6) * a**3))) / 2


class Rows(MatrixExpr):
    """A row vector b (1×d) repeated on n rows: how a bias is added to every position."""

    def __new__(cls, row, n):
        return super().__new__(cls, sp.sympify(row), sp.sympify(n))

    @property
    def shape(self):
        return (self.args[1], self.args[0].shape[1])

    def _entry(self, i, j, **kwargs):
        return self.args[0]._entry(0, j, **kwargs)

    def _latex(self, printer):
        return printer._print(self.args[0])

    def _numpycode(self, printer):
        return printer._print(self.args[0])  # (…, 1, d) broadcasts over the rows


# LayerNorm's ε: PyTorch's default, as the article leaves ε unstated; a subject may declare its own
EPSILON = declare("layernorm.epsilon", sp.Rational(1, 10**5), lambda v: v >= 0, "0 or more (it is added to a variance)")


class LayerNorm(MatrixExpr):
    """Each row x normalised over its features: γ ⊙ (x - μ) / √(σ² + ε) + β, with μ and σ² the
    row's mean and biased (population) variance, as PyTorch computes them; γ, β are 1×d."""

    EPSILON = EPSILON

    def __new__(cls, x, gamma, beta):
        return super().__new__(cls, sp.sympify(x), sp.sympify(gamma), sp.sympify(beta))

    @property
    def shape(self):
        return self.args[0].shape

    def mean(self, i, **kwargs):
        """μ_i, the mean of row i over its d features."""
        x = self.args[0]
        k = sp.Dummy("k", integer=True)
        return sp.Sum(x._entry(i, k, **kwargs), (k, 0, x.shape[1] - 1)).doit() / x.shape[1]

    def variance(self, i, mean, **kwargs):
        """σ²_i, the biased variance of row i about its mean."""
        x = self.args[0]
        k = sp.Dummy("k", integer=True)
        return sp.Sum((x._entry(i, k, **kwargs) - mean) ** 2, (k, 0, x.shape[1] - 1)).doit() / x.shape[1]

    def normalised(self, i, j, mean, var, eps=EPSILON, **kwargs):
        x, gamma, beta = self.args
        return gamma._entry(0, j, **kwargs) * (x._entry(i, j, **kwargs) - mean) / sp.sqrt(var + eps) \
            + beta._entry(0, j, **kwargs)

    def _entry(self, i, j, **kwargs):
        mean = self.mean(i, **kwargs)
        return self.normalised(i, j, mean, self.variance(i, mean, **kwargs), **kwargs)

    @classmethod
    def definition(cls, shape=(_n, _d)) -> tuple:
        """LN(a)_ij = γ_j (a_ij − μ_i) / √(σ²_i + ε) + β_j, then μ_i, σ²_i and ε (a row of shape[1] features)."""
        d = shape[1]
        ln = cls(sp.MatrixSymbol("a", *shape), sp.MatrixSymbol("gamma", 1, d), sp.MatrixSymbol("beta", 1, d))
        mu, var, eps = sp.Symbol(r"\mu_{i}"), sp.Symbol(r"\sigma_{i}^{2}"), sp.Symbol(r"\varepsilon")
        return stated(ln, ln.normalised(_i, _j, mu, var, eps)) + tuple(
            sp.Eq(lhs, rhs, evaluate=False) for lhs, rhs in
            ((mu, ln.mean(_i)), (var, ln.variance(_i, mu)), (eps, cls.EPSILON)))

    def defined(self) -> tuple:
        return type(self).definition(self.shape)

    def _latex(self, printer):
        x, gamma, beta = (printer._print(a) for a in self.args)
        return rf"\operatorname{{LN}}_{{{gamma}, {beta}}}\left({x}\right)"

    def _numpycode(self, printer):
        x, gamma, beta = (printer._print(a) for a in self.args)
        return f"_layernorm({x}, {gamma}, {beta}, _constant('layernorm.epsilon'))"
