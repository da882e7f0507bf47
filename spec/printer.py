"""The oracle's printer: SymPy's NumPy printer, extended so leading batch axes broadcast.

Matrices are stored as NumPy arrays whose last two axes are the matrix and whose leading axes
(if any) are a batch: a column vector h of the spec is an array of shape (..., H, 1). Three
changes to the stock printer make that work: products become `numpy.matmul` (which broadcasts
leading axes) instead of `.dot`, transposes swap only the last two axes, and a block matrix
broadcasts the batch axes of its blocks before joining them.
"""
from __future__ import annotations

from functools import reduce

import numpy as np
from scipy import special
from sympy import OneMatrix
from sympy.printing.numpy import NumPyPrinter

from .constants import constant
from .functions import Mask


class BatchedNumPyPrinter(NumPyPrinter):
    """NumPy printer for matrix expressions over batched arrays."""

    def _print_MatMul(self, expr):
        coeff, matrices = expr.as_coeff_matrices()
        if len(matrices) > 2:  # SymPy flattens (X_q W_Q)(X_k W_K)^T: the order is chosen at run time
            code = f"_chain({', '.join(self._print(m) for m in matrices)})"
        else:
            code = reduce(lambda a, b: f"_matmul({a}, {b})", (self._print(m) for m in matrices))
        return code if coeff == 1 else f"({self._print(coeff)})*{code}"

    def _print_Pow(self, expr, rational=False):
        # A power of a dimension (1/√d_k) stays a Python float, which NumPy treats as weak:
        # numpy.sqrt(d_k) would be a float64 scalar and lift a float16 baseline to float64.
        if expr.base.is_Symbol and expr.exp.is_number:
            return f"({self._print(expr.base)})**({float(expr.exp)!r})"
        return super()._print_Pow(expr, rational=rational)

    def _print_Transpose(self, expr):
        return f"{self._module_format('numpy.swapaxes')}({self._print(expr.arg)}, -1, -2)"

    def _print_HadamardProduct(self, expr):
        return "(" + " * ".join(f"({self._print(a)})" for a in expr.args) + ")"

    def _print_MatAdd(self, expr):
        # A OneMatrix inside a sum has the sum's shape, so the scalar 1 broadcasts to it exactly
        # and keeps the dtype of the other terms (numpy.ones would be float64). A mask (-∞ or 0)
        # in a sum is `where(hidden, -inf, rest)`: the same value, in the rest's dtype.
        masks = [a for a in expr.args if isinstance(a, Mask)]
        terms = [a for a in expr.args if not isinstance(a, Mask)]
        code = "(" + " + ".join("1" if isinstance(a, OneMatrix) else self._print(a) for a in terms) + ")"
        for mask in masks:
            code = f"_mask_fill({code}, {mask.hidden_numpy(self)})"
        return code

    def _print_OneMatrix(self, expr):
        raise NotImplementedError("OneMatrix is supported only as a term of a sum")

    def _print_BlockMatrix(self, expr):
        rows = ", ".join(
            "[" + ", ".join(self._print(expr.blocks[r, c]) for c in range(expr.blocks.shape[1])) + "]"
            for r in range(expr.blocks.shape[0])
        )
        return f"_block([{rows}])"


def _block(rows):
    """numpy.block over the last two axes, after broadcasting the leading (batch) axes."""
    batches = {np.shape(a)[:-2] for row in rows for a in row}
    if len(batches) == 1:
        grid = rows
    else:
        batch = np.broadcast_shapes(*batches)
        grid = [[np.broadcast_to(a, batch + np.shape(a)[-2:]) for a in row] for row in rows]
    return np.concatenate([np.concatenate(row, axis=-1) for row in grid], axis=-2)


def _matmul(a, b):
    """numpy.matmul in the operands' dtype; a weight (2-D) times a batch, or a batch with a unit head
    axis times a stack of per-head weights (h, k, p), runs as one BLAS product.

    (ml_dtypes' bfloat16 product returns float32: the cast keeps a bfloat16 baseline bfloat16.)
    """
    dtype = np.result_type(a, b)
    if a.ndim == 2 and b.ndim > 2 and b.shape[-1] == 1:  # a batch of column vectors
        product = np.matmul(b[..., 0], a.T)[..., None]
    elif a.ndim == 2 and b.ndim > 2:
        batch, (k, n) = b.shape[:-2], b.shape[-2:]
        product = a @ np.moveaxis(b, -2, 0).reshape(k, -1)
        product = np.moveaxis(product.reshape(a.shape[0], *batch, n), 0, -2)
    elif b.ndim == 3 and a.ndim >= 3 and a.shape[-3] == 1:  # a batch times a stack of weights (heads)
        product = np.moveaxis(np.tensordot(a[..., 0, :, :], b, axes=([-1], [1])), -2, -3)
    else:
        product = np.matmul(a, b)
    return product.astype(dtype, copy=False)


def _chain(*arrays):
    """The product of a chain of (batched) matrices, in the cheapest order for their actual shapes
    (numpy.linalg.multi_dot's dynamic programme, with batch axes counted in the cost)."""
    count = len(arrays)
    shapes = {(i, i): np.shape(a) for i, a in enumerate(arrays)}
    cost, split = {(i, i): 0 for i in range(count)}, {}
    for length in range(1, count):
        for i in range(count - length):
            j = i + length
            options = []
            for k in range(i, j):
                left, right = shapes[i, k], shapes[k + 1, j]
                batch = np.broadcast_shapes(left[:-2], right[:-2])
                flops = int(np.prod(batch)) * left[-2] * left[-1] * right[-1]
                options.append((cost[i, k] + cost[k + 1, j] + flops, k, batch + (left[-2], right[-1])))
            cost[i, j], split[i, j], shapes[i, j] = min(options, key=lambda o: o[0])

    def product(i, j):
        return arrays[i] if i == j else _matmul(product(i, split[i, j]), product(split[i, j] + 1, j))
    return product(0, count - 1)


def _sigmoid(a):
    """σ(a) = 1/(1+e^-a) = (1 + tanh(a/2))/2: the same function, one transcendental, no overflow."""
    half = a.dtype.type(0.5)  # a NumPy scalar keeps a low-precision array in its dtype
    return half + half * np.tanh(half * a)


def _softmax_rows(a):
    """Softmax over the columns of each row (axis -1); a row all -inf gives NaN (no value)."""
    with np.errstate(invalid="ignore"):
        e = np.exp(a - np.max(a, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)


def _causal_hidden(n, m, offset=0):
    """Entries j > i + offset of an n×m matrix: the keys after each query."""
    return np.triu(np.ones((n, m), dtype=bool), k=1 + offset)


def _positional(like, concat=False):
    """P for an array of shape (..., n, d): interleaved sin/cos, or sines then cosines.

    Computed in like's dtype throughout, as a naive implementation in that dtype would: in float16
    the angle of a late position keeps few correct bits, and the baseline must show that."""
    n, d = like.shape[-2:]
    real = like.dtype.type
    col = np.arange(d)
    if concat:
        half = (d + 1) // 2
        pair, sines = np.where(col < half, col, col - half), col < half
    else:
        pair, sines = col // 2, col % 2 == 0
    i = np.arange(n).astype(like.dtype)[:, None]
    angle = i / real(constant("pe.base")) ** ((2 * pair).astype(like.dtype) / real(d))
    return np.where(sines, np.sin(angle), np.cos(angle))


def _relu(a):
    return np.maximum(a, a.dtype.type(0))


def _gelu(a):
    """a Φ(a), exact (erf); computed in a's dtype (scipy's erf is float32/64: a lower dtype goes through float32)."""
    work = a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)
    return (work * (1 + special.erf(work / np.sqrt(work.dtype.type(2)))) / 2).astype(a.dtype)


def _gelu_tanh(a):
    """GPT-2's a (1 + tanh(√(2/π) (a + 0.044715 a³))) / 2, in a's dtype."""
    real = a.dtype.type
    return real(0.5) * a * (real(1) + np.tanh(real(np.sqrt(2 / np.pi)) * (a + real(0.044715) * a * a * a)))


def _layernorm(x, gamma, beta, eps):
    """Over the last axis: γ (x - μ) / √(σ² + ε) + β, σ² the biased variance; in x's dtype."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # float16: an ε of 1e-12 is 0, a constant row 0/0
        return gamma * centred / np.sqrt(var + eps) + beta


def _mask_fill(scores, hidden):
    return np.where(hidden, scores.dtype.type(-np.inf), scores)


def _softmax_columns(a):
    """Softmax over the rows of each column (axis -2), shifted by the column max."""
    e = np.exp(a - np.max(a, axis=-2, keepdims=True))
    return e / np.sum(e, axis=-2, keepdims=True)


NAMESPACE = {"_block": _block, "_chain": _chain, "_matmul": _matmul, "_sigmoid": _sigmoid, "_tanh": np.tanh, "_softmax_columns": _softmax_columns,
             "_softmax_rows": _softmax_rows, "_causal_hidden": _causal_hidden, "_mask_fill": _mask_fill,
             "_positional": _positional, "_relu": _relu, "_gelu": _gelu, "_gelu_tanh": _gelu_tanh, "_layernorm": _layernorm, "_constant": constant}
