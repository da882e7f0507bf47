"""The oracle's printer: SymPy's NumPy printer, extended so leading batch axes broadcast.

Matrices are stored as NumPy arrays whose last two axes are the matrix and whose leading axes
(if any) are a batch: a column vector h of the spec is an array of shape (..., H, 1). Three
changes to the stock printer make that work: products become `_matmul` (a matmul, which broadcasts
leading axes) instead of `.dot`, transposes swap only the last two axes, and a block matrix
(`_block`) broadcasts the batch axes of its blocks before joining them. The names the printed code
calls are spec/kernels.py's, bound to NumPy here (NAMESPACE) and to torch in spec/torch_oracle.py.
"""
from __future__ import annotations

from functools import reduce

import array_api_compat.numpy
from sympy import OneMatrix
from sympy.printing.numpy import NumPyPrinter

from .functions import Mask
from .kernels import NumPyKernels


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


NAMESPACE = NumPyKernels(array_api_compat.numpy).namespace()  # the names the printed code calls (spec/kernels.py)
