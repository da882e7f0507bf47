"""Common mistakes, each the spec's oracle on transformed inputs, parameters or constants, or a
small oracle of its own, so that the diagnosis can name one a subject makes (diagnosis.py confirms
it on fresh cases first).

A mistake's `recast` maps a case (params, inputs) to the case on which the article's oracle computes
what the mistake computes, with the constants to put in force; its `oracle`, where it has one, maps
the case to the outputs itself. Either gives None where the mistake does not apply. A mistake that is
no other equation but a loss of precision of one evaluation order (a one-pass variance) shows only in
the run's dtype: its `in_dtype` oracle computes it there, (params, inputs, dtype) -> outputs, and the
diagnosis names it where the subject's error is of the size of its own (diagnosis.lost_alike).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nlpspec.spec.constants import constant

from .tolerance import numpy_dtype


@dataclass(frozen=True)
class Mistake:
    name: str                        # in words: "the scores divided by √d_v, not √d_k"
    recast: Callable | None = None   # (params, inputs) -> (params, inputs, constants) or None
    oracle: Callable | None = None   # (params, inputs) -> outputs or None
    in_dtype: Callable | None = None  # (params, inputs, torch dtype) -> outputs computed in it, or None
    why: str = ""                    # what the message adds when it is named


def scaled_leaves(tree, names: tuple, factor: float):
    """tree with every array whose key is in `names` (at any depth) multiplied by factor."""
    if isinstance(tree, dict):
        return {k: v * factor if k in names and isinstance(v, np.ndarray) else scaled_leaves(v, names, factor)
                for k, v in tree.items()}
    if isinstance(tree, list):
        return [scaled_leaves(v, names, factor) for v in tree]
    return tree


def first_leaf(tree, name: str):
    """The first array under key `name` at any depth, or None."""
    if isinstance(tree, dict):
        if isinstance(tree.get(name), np.ndarray):
            return tree[name]
        tree = list(tree.values())
    if isinstance(tree, list):
        return next((found for found in (first_leaf(v, name) for v in tree) if found is not None), None)
    return None


def scores_divided_by(label: str, divisor: Callable) -> Mistake:
    """Attention scores divided by divisor(d_k, d_v, h) instead of √d_k: the article's oracle with
    the queries (q, or W_Q and b_Q in every attention) multiplied by √d_k / divisor."""
    def recast(params, inputs):
        if isinstance(inputs.get("q"), np.ndarray) and isinstance(inputs.get("v"), np.ndarray):
            d_k, d_v, h = inputs["q"].shape[-1], inputs["v"].shape[-1], 1
            factor = math.sqrt(d_k) / divisor(d_k, d_v, h)
            return params, {**inputs, "q": inputs["q"] * factor}, {}
        W_Q = first_leaf(params, "W_Q")
        if W_Q is None or W_Q.ndim != 3:
            return None
        h, d_k = W_Q.shape[0], W_Q.shape[-1]
        return scaled_leaves(params, ("W_Q", "b_Q"), math.sqrt(d_k) / divisor(d_k, d_k, h)), inputs, {}
    return Mistake(f"the scores divided by {label}, not √d_k", recast=recast)


def unbiased_variance(params, inputs):
    """LayerNorm with the n - 1 variance: γ·√((d-1)/d) and ε·(d-1)/d in the article's LayerNorm
    (every one of a layer's or a stack's LayerNorms, γ named gamma…)."""
    gamma = first_leaf(params, "gamma") if first_leaf(params, "gamma") is not None else first_leaf(params, "gamma_1")
    if gamma is None:
        return None
    d = gamma.shape[-1]

    def scaled(tree):
        if isinstance(tree, dict):
            return {k: v * math.sqrt((d - 1) / d) if k.startswith("gamma") and isinstance(v, np.ndarray)
                    else scaled(v) for k, v in tree.items()}
        return [scaled(v) for v in tree] if isinstance(tree, list) else tree
    return scaled(params), inputs, {"layernorm.epsilon": constant("layernorm.epsilon") * (d - 1) / d}


def one_pass_variance(params, inputs, dtype):
    """LayerNorm (E-id layernorm, its own γ and β) whose σ² is E[x²] - E[x]² in one pass, computed in
    `dtype` (NumPy's, or ml_dtypes' bfloat16), clamped at 0 as Flax's use_fast_variance clamps it: it
    cancels where a row's mean is large against its spread."""
    x, gamma, beta = inputs.get("x"), params.get("gamma"), params.get("beta")
    if not all(isinstance(a, np.ndarray) for a in (x, gamma, beta)) or set(params) != {"gamma", "beta"}:
        return None
    cast = numpy_dtype(dtype)
    x, gamma, beta = (a.astype(cast) for a in (x, gamma, beta))
    mean = x.mean(-1, keepdims=True)
    var = np.maximum((x * x).mean(-1, keepdims=True) - mean * mean, cast(0))
    with np.errstate(all="ignore"):
        out = gamma * (x - mean) / np.sqrt(var + cast(constant("layernorm.epsilon"))) + beta
    return {"out": out.astype(np.float64)}


def mask_changed(name: str, inverted: bool) -> Mistake:
    """The mask input `name` (True: hidden) handed over inverted (True read as visible), or dropped."""
    def recast(params, inputs):
        mask = inputs.get(name)
        if not isinstance(mask, np.ndarray) or mask.dtype != bool:
            return None
        return params, {**inputs, name: ~mask if inverted else np.zeros_like(mask)}, {}
    return Mistake(f"the mask {name!r} {'inverted (True read as visible)' if inverted else 'dropped'}", recast=recast)


def forget_bias_twice(params, inputs):
    """An LSTM whose forget-gate bias is added twice (a library's two biases both set to b_f)."""
    if first_leaf(params, "b_f") is None:
        return None
    return scaled_leaves(params, ("b_f",), 2.0), inputs, {}


def causal_mask_at(label: str, ahead: int | None) -> Mistake:
    """Causal attention (q, k, v and no mask given) whose query i sees the keys j <= i + ahead (-1:
    the diagonal hidden, 1: one ahead; None: every key), in float64; a row that sees no key is NaN."""
    def oracle(params, inputs):
        q, k, v = (inputs.get(name) for name in ("q", "k", "v"))
        if not all(isinstance(a, np.ndarray) for a in (q, k, v)) or len(inputs) != 3:
            return None
        n, m = q.shape[-2], k.shape[-2]
        hidden = np.zeros((n, m), bool) if ahead is None else np.triu(np.ones((n, m), bool), ahead + 1)
        scores = np.where(hidden, -np.inf, q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]))
        with np.errstate(all="ignore"):
            e = np.exp(scores - scores.max(-1, keepdims=True))
            weights = e / e.sum(-1, keepdims=True)
        return {"out": weights @ v, "weights": weights}
    return Mistake(label, oracle=oracle)


def window_changed(delta: int) -> Mistake:
    """The sliding window (mask.sliding_window) w taken as w + delta: query i sees the keys
    i - w - delta < j <= i; the window drawn as an input, or the declared mask.window."""
    def recast(params, inputs):
        given = inputs.get("window")
        w = (constant("mask.window") if given is None else int(given)) + delta
        if w < (1 if given is None else 0):  # a window of 0 keys drawn: every row hidden, NaN as the subject's
            return None
        if given is None:
            return params, inputs, {"mask.window": w}
        return params, {**inputs, "window": np.asarray(w, dtype=np.asarray(given).dtype)}, {}
    wider = "one key wider (query i sees keys i - w - 1 < j <= i)" if delta > 0 else \
        "one key narrower (query i sees keys i - w + 1 < j <= i)"
    return Mistake(f"the sliding window {wider}", recast=recast)


def heads_split_by_reshape(params, inputs):
    """Multi-head attention (its own parameters) whose heads are split by a reshape (B, n, h·d) ->
    (B, h, n, d), without the transpose, in float64."""
    names = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")
    if not all(isinstance(params.get(k), np.ndarray) for k in names) or "query" not in inputs:
        return None
    query = inputs["query"]
    key = inputs.get("key", query)
    value = inputs.get("value", key)
    h = params["W_Q"].shape[0]

    def split(x, W, b):
        y = x @ np.concatenate(list(W), axis=-1) + b.reshape(-1)  # head 1's columns first
        return y.reshape(y.shape[0], h, y.shape[1], y.shape[2] // h)
    q, k, v = (split(x, params[f"W_{s}"], params[f"b_{s}"]) for x, s in ((query, "Q"), (key, "K"), (value, "V")))
    hidden = np.zeros((len(query), 1, query.shape[1], key.shape[1]), bool)
    if isinstance(inputs.get("attn_mask"), np.ndarray):
        hidden = hidden | inputs["attn_mask"]
    if isinstance(inputs.get("key_padding_mask"), np.ndarray):
        hidden = hidden | inputs["key_padding_mask"][:, None, None, :]
    scores = np.where(hidden, -np.inf, q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]))
    with np.errstate(all="ignore"):
        e = np.exp(scores - scores.max(-1, keepdims=True))
        weights = e / e.sum(-1, keepdims=True)
    heads = weights @ v
    merged = np.swapaxes(heads, 1, 2).reshape(len(query), query.shape[1], -1)
    return {"out": merged @ params["W_O"] + params["b_O"], "weights": weights}


CATALOGUE = (
    scores_divided_by("√d_v", lambda d_k, d_v, h: math.sqrt(d_v)),
    scores_divided_by("√d_model", lambda d_k, d_v, h: math.sqrt(h * d_k)),
    scores_divided_by("d_k", lambda d_k, d_v, h: d_k),
    scores_divided_by("√(2·d_k)", lambda d_k, d_v, h: math.sqrt(2 * d_k)),
    scores_divided_by("1 (no scale)", lambda d_k, d_v, h: 1.0),
    Mistake("LayerNorm with the unbiased (n - 1) variance", recast=unbiased_variance),
    Mistake("LayerNorm's one-pass variance E[x²] - E[x]²", why="where a row's mean is large against its spread "
            "the two terms cancel and σ² loses its bits: a loss of precision of that evaluation order, not another "
            "equation (the two-pass mean((x - μ)²) keeps them)", in_dtype=one_pass_variance),
    *(mask_changed(name, inverted) for name in ("mask", "attn_mask", "key_padding_mask") for inverted in (True, False)),
    Mistake("the forget bias added twice", recast=forget_bias_twice),
    causal_mask_at("the causal mask's diagonal hidden (query i sees keys j < i)", -1),
    causal_mask_at("the causal mask one ahead (query i sees keys j <= i + 1)", 1),
    causal_mask_at("no causal mask at all", None),
    window_changed(1),
    window_changed(-1),
    Mistake("the heads split by a reshape, without the transpose", oracle=heads_split_by_reshape),
)

