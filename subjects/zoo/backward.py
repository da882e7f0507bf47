"""Mutants with a right forward and a wrong backward: hand-written kernels (a torch.autograd.Function
each) whose values are the reference's and whose derivative is not, as a fused kernel's hand-written
backward can be. Only the gradient check (properties/engine/gradient.py) can see them.

Each wrong derivative is stated as a function whose value is the reference's and whose autograd is
the bug (v.detach() + (w - w.detach()): the value of v, the derivative of w).
"""
from __future__ import annotations

import math

import torch

from nlpspec.reference import attention as ref
from nlpspec.reference import gru_cell, lstm_cell, rnn_cell
from nlpspec.reference.transformer import EPSILON, RMS_EPSILON, ffn, layer_norm, rms_norm

from .mutant import mutant


class Kernel(torch.autograd.Function):
    """right(*args) forward; backward, the autograd of wrong(*args) (same value, another derivative); args
    that are not tensors (a mask of None) pass as they are."""

    @staticmethod
    def forward(ctx, right, wrong, *args):
        ctx.wrong, ctx.others = wrong, [None if isinstance(a, torch.Tensor) else a for a in args]
        ctx.save_for_backward(*(a if isinstance(a, torch.Tensor) else None for a in args))
        return right(*args)

    @staticmethod
    def backward(ctx, *grads):
        saved = [t if t is None else t.detach().requires_grad_(needs)
                 for t, needs in zip(ctx.saved_tensors, ctx.needs_input_grad[2:])]
        args = [a if t is None else t for t, a in zip(saved, ctx.others)]
        with torch.enable_grad():
            outs = ctx.wrong(*args)
        wrt = [t for t in saved if t is not None and t.requires_grad]
        found = iter(torch.autograd.grad(outs, wrt, grads, allow_unused=True))
        return (None, None, *(next(found) if t is not None and t.requires_grad else None for t in saved))


def with_derivative_of(value, wrong):
    """value's value, wrong's derivative only (zoo.attention.with_gradient_of adds a leak to value's own)."""
    return value.detach() + (wrong - wrong.detach())


def finite(s):
    """Scores with -inf (hidden keys) as 0: s - s.detach() is NaN there."""
    return torch.where(torch.isfinite(s), s, torch.zeros_like(s))


# --- attention -----------------------------------------------------------------------------------
def softmax_backward_unsubtracted(s, dim=-1):
    """softmax, its backward P ⊙ g: the subtraction of Σ P g left out."""
    P = torch.softmax(s, dim)
    return P.detach() + P.detach() * (finite(s) - finite(s).detach())


def attention_of(wrong_attention, causal=False):
    """An attention builder around a kernel whose backward is wrong_attention(q, k, v, mask)'s."""
    def build(params):
        def fn(q, k, v, mask=None):
            out, weights = Kernel.apply(lambda q, k, v, mask: ref.attention(q, k, v, mask, causal),
                                        wrong_attention(causal), q, k, v, mask)
            return {"out": out, "weights": weights}
        return fn
    return build


def unsubtracted(causal):
    def wrong(q, k, v, mask):
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if causal:
            n, m = scores.shape[-2:]
            scores = scores.masked_fill(torch.ones(n, m, dtype=torch.bool, device=q.device).triu(1), -math.inf)
        if mask is not None:
            scores = scores + mask
        weights = softmax_backward_unsubtracted(scores)
        return weights @ v, weights
    return wrong


def dq_unscaled(causal):
    def wrong(q, k, v, mask):  # dQ = dS K, the 1/√d_k left out
        return ref.attention(with_derivative_of(q, q * math.sqrt(q.shape[-1])), k, v, mask, causal)
    return wrong


def dv_unmasked(causal):
    def wrong(q, k, v, mask):  # dV = Pᵀ dO with P the weights before the mask
        out, weights = ref.attention(q, k, v.detach(), mask, causal)
        unmasked, _ = ref.attention(q.detach(), k.detach(), v)
        return out + (unmasked - unmasked.detach()), weights
    return wrong


# --- LayerNorm, RMSNorm, FFN ---------------------------------------------------------------------
def layernorm_builder(params):
    def wrong(x, gamma, beta):  # the mean's own derivative left out: dx without the mean term
        mean = x.mean(-1, keepdim=True).detach()
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return gamma * (x - mean) / torch.sqrt(var + EPSILON) + beta
    return lambda x: Kernel.apply(layer_norm, wrong, x, params["gamma"], params["beta"])


def rmsnorm_builder(params):
    def wrong(x, gamma):  # the root mean square taken as a constant: dx = γ g / rms, its own derivative left out
        rms = torch.sqrt((x * x).mean(-1, keepdim=True) + RMS_EPSILON).detach()
        return gamma * x / rms
    return lambda x: Kernel.apply(rms_norm, wrong, x, params["gamma"])


def ffn_builder(params):
    def wrong(z, W_1, b_1, W_2, b_2):  # ReLU's derivative taken as 1 everywhere
        a = z @ W_1 + b_1
        return with_derivative_of(torch.relu(a), a) @ W_2 + b_2
    names = ("W_1", "b_1", "W_2", "b_2")
    return lambda z: Kernel.apply(ffn, wrong, z, *(params[n] for n in names))


# --- recurrent cells -----------------------------------------------------------------------------
def cell_kernel(cell, wrong, inputs: tuple):
    """A cell builder: the reference `cell` forward, wrong's derivative backward; wrong takes the
    inputs and params by name and returns the cell's outputs in the cell's order."""
    def build(params):
        keys = tuple(params)

        def right(*args):
            return tuple(cell(**dict(zip(inputs + keys, args))).values())

        def fn(**given):
            args = (*(given[n] for n in inputs), *(params[k] for k in keys))
            names = cell(**dict(zip(inputs + keys, args))).keys()
            return dict(zip(names, Kernel.apply(right, lambda *a: wrong(**dict(zip(inputs + keys, a))), *args)))
        return fn
    return build


def rnn_wrong(x, h_prev, W_hh, W_xh, b_h):  # tanh's derivative taken as 1 - h, not 1 - h²
    a = h_prev @ W_hh.T + x @ W_xh.T + b_h
    h = torch.tanh(a)
    return (h.detach() + (1 - h.detach()) * (a - a.detach()),)


def lstm_wrong(x, h_prev, C_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o):  # dC_prev = dC: f skipped
    hx = torch.cat([h_prev, x], -1)
    f, i = torch.sigmoid(hx @ W_f.T + b_f), torch.sigmoid(hx @ W_i.T + b_i)
    Chat, o = torch.tanh(hx @ W_C.T + b_C), torch.sigmoid(hx @ W_o.T + b_o)
    C = f * C_prev.detach() + (C_prev - C_prev.detach()) + i * Chat
    return f, i, Chat, C, o, o * torch.tanh(C)


def gru_wrong(x, h_prev, W_r, b_r, W_z, b_z, W_h, b_h):  # the candidate's derivative with r after W_h
    H = h_prev.shape[-1]
    hx = torch.cat([h_prev, x], -1)
    r, z = torch.sigmoid(hx @ W_r.T + b_r), torch.sigmoid(hx @ W_z.T + b_z)
    right = torch.tanh(torch.cat([r * h_prev, x], -1) @ W_h.T + b_h)
    after = torch.tanh(x @ W_h[:, H:].T + r * (h_prev @ W_h[:, :H].T) + b_h)
    htilde = with_derivative_of(right, after)
    return r, z, htilde, (1 - z) * h_prev + z * htilde


MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in [
    mutant("attn_softmax_backward_unsubtracted", "softmax backward P ⊙ g, without the subtraction of Σ P g",
           {"attention": attention_of(unsubtracted), "attention.causal": attention_of(unsubtracted, causal=True)}),
    mutant("attn_backward_dq_unscaled", "dQ = dS K, without 1/√d_k (the forward scales)",
           {"attention": attention_of(dq_unscaled), "attention.causal": attention_of(dq_unscaled, causal=True)}),
    mutant("attn_backward_dv_unmasked", "dV = Pᵀ dO from the weights before the mask",
           {"attention": attention_of(dv_unmasked), "attention.causal": attention_of(dv_unmasked, causal=True)}),
    mutant("layernorm_backward_without_mean", "LayerNorm's backward without the mean term",
           {"layernorm": layernorm_builder}),
    mutant("rmsnorm_backward_rms_constant", "RMSNorm's backward treats the root mean square as a constant",
           {"rmsnorm": rmsnorm_builder}),
    mutant("ffn_backward_relu_passes_all", "ReLU's backward passes the gradient of inactive units too",
           {"ffn": ffn_builder}),
    mutant("rnn_backward_tanh_derivative", "tanh's derivative taken as 1 - h, not 1 - h²",
           {"rnn.cell": cell_kernel(rnn_cell, rnn_wrong, ("x", "h_prev"))}),
    mutant("lstm_backward_forget_skipped", "the cell path's backward skips the forget gate (dC_prev = dC)",
           {"lstm.cell": cell_kernel(lstm_cell, lstm_wrong, ("x", "h_prev", "C_prev"))}),
    mutant("gru_backward_reset_after", "the candidate's backward puts the reset gate after W_h (the forward before)",
           {"gru.cell": cell_kernel(gru_cell, gru_wrong, ("x", "h_prev"))}),
]}
