"""One rounding of every intermediate value, for the tolerance rule's sensitivity
(properties/engine/tolerance.py): NumPy arrays whose every floating-point ufunc result (a sum, a product,
a mean's reduction, a square root, …) is changed by a relative eps of random sign, as if it had
been rounded once more. Run the oracle on such arrays and its result moves as far as the
rounding of its intermediate values moves it (one sample of Monte Carlo arithmetic).

Operations that are not ufuncs (indexing keeps the type; a concatenation may not) pass values on
unchanged; the oracle's EvaluationContext (its `rounding`) makes every equation's inputs such arrays again.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

_STATE: ContextVar = ContextVar("rounded_arithmetic", default=None)  # (eps, rng) while active


class Rounded(np.ndarray):
    """An array whose ufunc results are rounded once more while `rounded_arithmetic` is active."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(a) if isinstance(a, Rounded) else a for a in inputs]
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, Rounded) else o for o in outs)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if method == "at":
            return result
        results = result if isinstance(result, tuple) else (result,)
        state = _STATE.get()
        rounded = []
        for k, value in enumerate(results):
            if state is not None and isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.size:
                eps, rng = state
                value *= 1 + eps * np.where(rng.random(value.shape) < 0.5, -1.0, 1.0)
            elif state is not None and isinstance(value, np.floating):
                eps, rng = state
                value = value * (1 + eps * (-1.0 if rng.random() < 0.5 else 1.0))
            if outs and k < len(outs) and isinstance(outs[k], Rounded):
                value = outs[k]
            elif isinstance(value, np.ndarray):
                value = value.view(Rounded)
            rounded.append(value)
        return tuple(rounded) if isinstance(result, tuple) else rounded[0]


@contextmanager
def rounded_arithmetic(eps: float, rng: np.random.Generator):
    """Within it, every ufunc on `Rounded` arrays rounds its result once more by eps."""
    token = _STATE.set((eps, rng))
    try:
        yield
    finally:
        _STATE.reset(token)


class RoundedOperands(TorchDispatchMode):
    """The same for torch, forward and backward: within it, every aten operation (the oracle's, and
    the ones autograd's backward pass runs) reads each float tensor operand changed by a relative eps
    of random sign, as if it had been rounded once more. Rounding operands rather than results reaches
    the values a backward formula saves (σ's backward reads σ's own output), and so the cancellation
    in a softmax's backward, P ⊙ (g - Σ P g), which decides a saturated row's gradient. A softmax's
    weights are moreover changed by a relative eps times the largest magnitude of their row of scores:
    log P = s - logsumexp(s) is formed at the scores' scale by every implementation that recomputes P
    from a row statistic (FlashAttention's backward does; PyTorch's CPU flash kernel, with scores near
    900 in float64, was 4.6e-14 off in a weight of 1 - 3e-14 that the spec's softmax, subtracting the
    row's maximum, gets to the last bit). Views and copies pass values on unchanged, and an in-place
    operation writes into its own operand (rounding that would write into a copy: torch.eye's diagonal,
    filled in place, stayed 0). One sample per `seed`."""

    def __init__(self, eps: float, seed: int, softmax_at_scores_scale: bool = True):
        super().__init__()
        self.eps, self.seed, self.generators = eps, seed, {}
        self.softmax_at_scores_scale = softmax_at_scores_scale  # off for a forward pass alone

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.is_view or func in UNCHANGED:
            return func(*args, **kwargs)
        names, written = operands(func)
        # an in-place operation (fill_, the diagonal of torch.eye) writes into its operand itself, never a copy
        args = tuple(a if i < len(names) and names[i] in written else tree_map(self.rounded, a) for i, a in enumerate(args))
        out = func(*args, **{k: v if k in written else tree_map(self.rounded, v) for k, v in kwargs.items()})
        if func == aten._softmax.default and self.softmax_at_scores_scale:  # weights to eps times the scores' scale
            scores, dim = args[0], args[1]
            scale = torch.where(scores.isfinite(), scores.abs(), 0).amax(dim, keepdim=True).clamp_min(1)
            out = out * (1 + self.eps * scale * self.signs(out))
        return out

    def rounded(self, value):
        if not (isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel()):
            return value
        return value * self.factors(value)

    def equation_input(self, value: torch.Tensor) -> torch.Tensor:
        """An input of an equation of the oracle (a sublayer's, a LayerNorm's, a step's state) changed by
        one rounding relative to each entry and at its array's scale, as tolerance.perturb changes the
        NumPy oracle's (EvaluationContext.rounding): a LayerNorm of two nearly equal features deep in a stack is
        decided by the rounding of the residual sum it normalises (torch's pre-LN decoder, d_model = 2,
        three layers: its gradient was 8 times the sensitivity that relative roundings alone gave). It runs
        within the mode, so its own products and sum read rounded operands too (RoundedOperands.rounded
        runs with the mode off, hence cheaper in-place factors there: the same values and draws)."""
        magnitude = value.detach().abs()
        scale = torch.where(magnitude.isfinite(), magnitude, 0).amax() if value.numel() else 0.0  # as perturb's
        return value * (1 + self.eps * self.signs(value)) + self.eps * scale * self.signs(value)

    def bits(self, like: torch.Tensor) -> torch.Tensor:
        """0 or 1 per entry, in like's shape, dtype and device: drawn in that dtype directly (the same
        draws as integers, without an int64 tensor and its cast: a third of the rounding's cost)."""
        if like.device not in self.generators:
            self.generators[like.device] = torch.Generator(like.device).manual_seed(self.seed)
        return torch.randint(0, 2, like.shape, generator=self.generators[like.device], device=like.device,
                             dtype=like.dtype)

    def signs(self, like: torch.Tensor) -> torch.Tensor:
        """-1 or +1 per entry, in like's shape, dtype and device."""
        return self.bits(like).mul_(2).sub_(1)

    def factors(self, like: torch.Tensor) -> torch.Tensor:
        """1 - eps or 1 + eps per entry (1 + eps * signs, exactly: both are numbers of the dtype), in place."""
        return self.bits(like).mul_(2 * self.eps).add_(1 - self.eps)


aten = torch.ops.aten
UNCHANGED = {aten.detach.default, aten.clone.default, aten._to_copy.default, aten.copy_.default,
             aten.lift_fresh.default, aten.alias.default, aten.zeros_like.default, aten.ones_like.default,
             aten.empty_like.default}


@functools.cache
def operands(func) -> tuple[list, set]:
    """An aten operation's argument names, and those it writes into (read once per operation, not per call)."""
    arguments = func._schema.arguments
    written = {a.name for a in arguments if a.alias_info is not None and a.alias_info.is_write}
    return [a.name for a in arguments], written


class FlashSoftmaxProduct(torch.autograd.Function):
    """softmax(S) V, its backward in FlashAttention's form: dS = P ⊙ (dP − D) with the row term
    D = rowsum(dO ⊙ O) read from the output O rather than formed as Σ_j P_ij dP_ij. The two are equal;
    rounded, they are not: autograd's form cancels exactly in Σ_j dS_ij (the gradient of a bias every
    key shares, b_K, is 0 to the last bit), FlashAttention's carries O's rounding into every dS_ij of
    the row (torch's CPU flash kernel, float32: Σ_j dK_j off by 3.5 where autograd's was off by 0.001,
    with |dK| near 3000). The gradient's rounding model takes this form in half its samples."""

    @staticmethod
    def forward(ctx, scores, values):
        out = torch.softmax(scores, dim=-1) @ values
        ctx.save_for_backward(scores, values, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        scores, values, out = ctx.saved_tensors
        weights = torch.softmax(scores, dim=-1)
        row = (grad * out).sum(-1, keepdim=True)
        d_scores = weights * (grad @ values.transpose(-1, -2) - row)
        return d_scores, (weights.transpose(-1, -2) @ grad).sum_to_size(values.shape)


class LayerNormClosedForm(torch.autograd.Function):
    """LN_{γ,β}(x) over the last axis, its backward in the closed form of fused kernels (PyTorch's
    native_layer_norm_backward, apex's): dx = rstd (dx̂ − mean(dx̂) − x̂ mean(dx̂ ⊙ x̂)), dx̂ = g ⊙ γ, rather
    than autograd's chain through the mean, the variance and the square root. Equal in exact arithmetic;
    where the Jacobian nearly vanishes (two features: x̂ = ±1 and LN's derivative is of the order of
    ε/σ²), the two round to different values: torch's post-LN decoder (d_model 2, float64) was 4.1 times
    the largest of 8 samples of the composed form off the spec. Half the samples take this form."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        centred = x - x.mean(-1, keepdim=True)
        rstd = 1 / torch.sqrt((centred * centred).mean(-1, keepdim=True) + eps)
        normal = centred * rstd
        ctx.save_for_backward(normal, rstd, gamma, beta)
        return gamma * normal + beta

    @staticmethod
    def backward(ctx, grad):
        normal, rstd, gamma, beta = ctx.saved_tensors
        d_normal = grad * gamma
        d_x = rstd * (d_normal - d_normal.mean(-1, keepdim=True) - normal * (d_normal * normal).mean(-1, keepdim=True))
        return d_x, (grad * normal).sum_to_size(gamma.shape), grad.sum_to_size(beta.shape), None
