"""The oracle's kernels: the functions the printed spec calls (`_block(…)`, `_softmax_rows(…)`, the
`numpy_helper` names of spec/functions.py), each written once on the array API.

`Kernels(xp)` binds them to one array library's namespace (array_api_compat's, looked up once, not on
every call); `namespace()` is what the printed code runs in. The NumPy oracle (spec/printer.py's
NAMESPACE) and the torch oracle (spec/torch_oracle.py) are two such bindings, and the few places where
they deliberately differ are the overrides below and in spec/torch_oracle.py, each with its reason.

Every kernel computes in its operands' dtype: the same code gives the float64 oracle and the
same-precision baseline of the tolerance rule, so the order of operations and the accumulation dtype
are part of each kernel's meaning.

A spec module whose function needs a kernel of its own (a component added beyond the article) brings
it with it: `@kernel` adds a function written once on the array API to every binding, here untouched.

How an evaluation departs from the plain one (each equation's inputs rounded, some functions computed
in another form) is its caller's to say, as an `EvaluationContext`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from array_api_compat import device
from scipy import special

from .constants import constant


@dataclass(frozen=True)
class EvaluationContext:
    """How the oracle evaluates, given by its caller (the engine's tolerance rule and gradient oracle):

    - rounding: a function applied to every float input of every compiled equation, before the
      equation reads it (None: the inputs as given): how properties/engine/tolerance.py stands one
      rounding of every intermediate value of a composition;
    - forms: functions the printed code computes another way, to the same value (the torch oracle):
      softmax_product=fn runs every product softmax(S) V as fn(S, V), layernorm=fn runs LN as
      fn(x, γ, β, ε) (the gradient's rounding model takes the backward passes of fused kernels there).

    `compile_equation(eq)(context=…, **arrays)` evaluates one equation in it; `context.run(fn, …)`, or
    `with context.applied():`, a whole composition (every equation it evaluates on the way)."""
    rounding: Callable | None = None
    forms: Mapping[str, Callable] = field(default_factory=dict)

    @staticmethod
    def current() -> EvaluationContext:
        """The context applied now: the plain one (no rounding, no forms) outside every `applied`."""
        return _CURRENT.get()

    @contextmanager
    def applied(self):
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def run(self, fn, /, *args, **kwargs):
        """fn(*args, **kwargs) evaluated in this context."""
        with self.applied():
            return fn(*args, **kwargs)


_CURRENT: ContextVar = ContextVar("evaluation_context", default=EvaluationContext())


class Kernels:
    """The kernels on the array namespace `xp`."""

    def __init__(self, xp):
        self.xp = xp

    # -- where libraries differ in mechanics, not in meaning --------------------------------------

    def scalar(self, value, like):
        """A constant for arithmetic with `like` that leaves it in its dtype: a Python number (weak)."""
        return value

    def quiet(self):
        """A context in which 0/0 and x/0 give NaN and ±∞ without a warning."""
        return nullcontext()

    def sizes_device(self):
        """Where an array made from sizes alone (a causal mask) goes."""
        return None

    def erf_operand(self, a):
        """GELU's operand, in the dtype its erf runs in."""
        return a

    def erf(self, a):
        return self.xp.erf(a)

    # -- the kernels -------------------------------------------------------------------------------

    def block(self, rows):
        """A block matrix: concatenation over the last two axes, after broadcasting the leading
        (batch) axes of the blocks (a view, and only where they differ)."""
        xp = self.xp
        batches = {tuple(a.shape[:-2]) for row in rows for a in row}
        if len(batches) > 1:
            batch = np.broadcast_shapes(*batches)  # shapes only: plain tuples whatever the library
            rows = [[xp.broadcast_to(a, batch + tuple(a.shape[-2:])) for a in row] for row in rows]
        return xp.concat([xp.concat(row, axis=-1) for row in rows], axis=-2)

    def matmul(self, a, b):
        return self.xp.matmul(a, b)

    def chain(self, *arrays):
        """The product of a chain of (batched) matrices, in the cheapest order for their actual shapes
        (numpy.linalg.multi_dot's dynamic programme, with batch axes counted in the cost): one order for
        both libraries, so the two oracles multiply in the same order."""
        count = len(arrays)
        shapes = {(i, i): tuple(a.shape) for i, a in enumerate(arrays)}
        cost, split = {(i, i): 0 for i in range(count)}, {}
        for length in range(1, count):
            for i in range(count - length):
                j = i + length
                options = []
                for k in range(i, j):
                    left, right = shapes[i, k], shapes[k + 1, j]
                    batch = np.broadcast_shapes(left[:-2], right[:-2])
                    flops = math.prod(batch) * left[-2] * left[-1] * right[-1]
                    options.append((cost[i, k] + cost[k + 1, j] + flops, k, batch + (left[-2], right[-1])))
                cost[i, j], split[i, j], shapes[i, j] = min(options, key=lambda o: o[0])

        def product(i, j):
            return arrays[i] if i == j else self.matmul(product(i, split[i, j]), product(split[i, j] + 1, j))
        return product(0, count - 1)

    def sigmoid(self, a):
        """σ(a) = 1/(1+e^-a) = (1 + tanh(a/2))/2: the same function, one transcendental, no overflow."""
        half = self.scalar(0.5, a)
        return half + half * self.xp.tanh(half * a)

    def softmax(self, a, axis):
        """Softmax along `axis`, shifted by the maximum there; a row all -∞ gives NaN (no value)."""
        xp = self.xp
        with self.quiet():
            e = xp.exp(a - xp.max(a, axis=axis, keepdims=True))
            return e / xp.sum(e, axis=axis, keepdims=True)

    def softmax_rows(self, a):
        """Softmax over the columns of each row (axis -1)."""
        return self.softmax(a, -1)

    def softmax_columns(self, a):
        """Softmax over the rows of each column (axis -2)."""
        return self.softmax(a, -2)

    def causal_hidden(self, n, m, offset=0, window=None):
        """Entries j > i + offset of an n×m matrix: the keys after each query; with a window w, also
        the entries j <= i + offset - w: the keys before its window."""
        xp = self.xp
        ones = xp.ones((int(n), int(m)), dtype=xp.bool, device=self.sizes_device())
        hidden = xp.triu(ones, k=1 + int(offset))
        if window is not None:
            hidden = hidden | xp.tril(ones, k=int(offset) - int(window))
        return hidden

    def mask_fill(self, scores, hidden):
        """The scores with -∞ where `hidden`, in the scores' dtype."""
        return self.xp.where(hidden, self.scalar(-math.inf, scores), scores)

    def positional(self, like, concat=False):
        """P for an array of shape (..., n, d): interleaved sin/cos, or sines then cosines.

        Computed in like's dtype throughout, as a naive implementation in that dtype would: in float16
        the angle of a late position keeps few correct bits, and the baseline must show that."""
        xp, at = self.xp, device(like)
        n, d = like.shape[-2:]
        col = xp.arange(d, device=at)
        if concat:
            half = (d + 1) // 2
            pair, sines = xp.where(col < half, col, col - half), col < half
        else:
            pair, sines = col // 2, col % 2 == 0
        i = xp.astype(xp.arange(n, device=at), like.dtype)[:, None]
        exponent = xp.astype(2 * pair, like.dtype) / self.scalar(d, like)
        angle = i / self.scalar(constant("pe.base"), like) ** exponent
        return xp.where(sines, xp.sin(angle), xp.cos(angle))

    def relu(self, a):
        return self.xp.maximum(a, self.scalar(0, a))

    def gelu(self, a):
        """a Φ(a), exact (erf), in a's dtype (its erf's, cast back)."""
        work = self.erf_operand(a)
        out = work * (1 + self.erf(work / self.scalar(math.sqrt(2), work))) / 2
        return out if out.dtype == a.dtype else self.xp.astype(out, a.dtype)

    def gelu_tanh(self, a):
        """GPT-2's a (1 + tanh(√(2/π) (a + 0.044715 a³))) / 2, in a's dtype."""
        c = self.scalar
        return c(0.5, a) * a * (c(1, a) + self.xp.tanh(c(math.sqrt(2 / math.pi), a) * (a + c(0.044715, a) * a * a * a)))

    def layernorm(self, x, gamma, beta, eps):
        """Over the last axis: γ (x - μ) / √(σ² + ε) + β, σ² the biased variance; in x's dtype."""
        xp = self.xp
        mean = xp.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=-1, keepdims=True)
        with self.quiet():  # float16: an ε of 1e-12 is 0, a constant row 0/0
            return gamma * centred / xp.sqrt(var + eps) + beta

    def added(self, fn):
        """A kernel a spec module adds (`kernel`), bound to this library: fn(self, *args)."""
        return partial(fn, self)

    def namespace(self, **extra) -> dict:
        """The names the printed code calls, bound to this library (with `extra` ones of the caller's); a
        kernel a spec module adds later (`kernel`) reaches it too."""
        names = {"_block": self.block, "_chain": self.chain, "_matmul": self.matmul, "_sigmoid": self.sigmoid,
                 "_tanh": self.xp.tanh, "_softmax_columns": self.softmax_columns, "_softmax_rows": self.softmax_rows,
                 "_causal_hidden": self.causal_hidden, "_mask_fill": self.mask_fill, "_positional": self.positional,
                 "_relu": self.relu, "_gelu": self.gelu, "_gelu_tanh": self.gelu_tanh, "_layernorm": self.layernorm,
                 "_constant": constant, **{name: self.added(fn) for name, fn in _ADDED.items()}, **extra}
        _BINDINGS.append((self, names))
        return names


_ADDED: dict[str, Callable] = {}  # the kernels spec modules add: the name the printed code calls -> fn
_BINDINGS: list[tuple[Kernels, dict]] = []  # every namespace handed out, so that a kernel added later reaches it


def kernel(fn):
    """Add fn(kernels, *args) to every binding, as `_<fn's name>` (what its function's `_numpycode` prints):
    written once on `kernels.xp`, with `kernels.scalar` and `kernels.quiet` for the mechanics, and in its
    operands' dtype, as every kernel here. A spec module's own function brings its kernel so, and this
    module, the printer and the torch oracle stay as they are; the torch binding computes it in the form of
    that name where the EvaluationContext gives one (spec/torch_oracle.py, TorchKernels.added)."""
    name = f"_{fn.__name__}"
    if name in _ADDED or any(name in names for _, names in _BINDINGS):
        raise ValueError(f"a kernel {name} exists already")
    _ADDED[name] = fn
    for kernels, names in _BINDINGS:
        names[name] = kernels.added(fn)
    return fn


class NumPyKernels(Kernels):
    """The kernels on NumPy arrays (ml_dtypes' bfloat16 included, and properties/engine/rounding.py's
    Rounded arrays, whose every ufunc result is rounded once more)."""

    def scalar(self, value, like):
        # A scalar of like's dtype: NumPy 2 (NEP 50) would lift a float16 array to float64 by a
        # np.float64 scalar, and ml_dtypes' bfloat16 takes its constants as bfloat16 scalars.
        return like.dtype.type(value)

    def quiet(self):
        return np.errstate(invalid="ignore", divide="ignore")

    def erf_operand(self, a):
        # scipy's erf has float32 and float64 loops only: a lower dtype computes GELU in float32.
        return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)

    def erf(self, a):
        return special.erf(a)  # the array API has no erf

    def matmul(self, a, b):
        """numpy.matmul in the operands' dtype; a weight (2-D) times a batch, or a batch with a unit head
        axis times a stack of per-head weights (h, k, p), runs as one BLAS product (numpy.matmul would
        loop over the batch; torch.matmul folds it itself).

        (ml_dtypes' bfloat16 product returns float32: the cast keeps a bfloat16 baseline bfloat16.)
        """
        dtype = np.result_type(a, b)
        if a.ndim == 2 and b.ndim > 2 and b.shape[-1] == 1:  # a batch of column vectors, as rows of one matrix
            rows = b[..., 0].reshape(-1, b.shape[-2])
            product = (rows @ a.T).reshape(*b.shape[:-2], a.shape[0], 1)
        elif a.ndim == 2 and b.ndim > 2:
            batch, (k, n) = b.shape[:-2], b.shape[-2:]
            product = a @ np.moveaxis(b, -2, 0).reshape(k, -1)
            product = np.moveaxis(product.reshape(a.shape[0], *batch, n), 0, -2)
        elif b.ndim == 3 and a.ndim >= 3 and a.shape[-3] == 1:  # a batch times a stack of weights (heads)
            product = np.moveaxis(np.tensordot(a[..., 0, :, :], b, axes=([-1], [1])), -2, -3)
        else:
            product = np.matmul(a, b)
        return product.astype(dtype, copy=False)
