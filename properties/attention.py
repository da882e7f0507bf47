"""The §3–4 components: attention, causal attention, multi-head attention, seq2seq attention and
positional encoding; how to draw their cases, and their oracles (the spec, in NumPy, any dtype).

A `kind` here is the tuple of named variants the subject declares (empty: the article's). Masks
are drawn as boolean arrays, True where a key is hidden from a query (the spec's B); the harness
hands them to the subject in the form it declares (see subjects/base.py).
"""
from __future__ import annotations

import numpy as np
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.control import current_build_context

from nlpspec.spec import attention as spec
from nlpspec.spec import positional
from nlpspec.spec.oracle import compile_equation, evaluate_chain

from .strategies import Shape, case, magnitude, size

MASK_FORMS = ("mask.bool_true_masked", "mask.bool_true_attends")  # default: additive float, 0 or -inf
MAX_HEADS = 4        # several heads, so that a head split that mixes heads shows
MAX_HEAD_SIZE = 3    # d_k = d_v of one head; d_model = heads · d_k
WEIGHT_BOUND = 1.0   # projection weights: with inputs up to 8, float16 scores stay finite


def mask(data, shape: tuple, label: str) -> np.ndarray:
    """A boolean mask (True: hidden), none, a quarter or half of its entries hidden; shrinks to none."""
    density = data.draw(st.sampled_from((0, 1, 2)), label=f"{label} density")
    count = int(np.prod(shape))
    if density == 0 or count == 0:
        hidden = np.zeros(shape, dtype=bool)
    else:
        raw = data.draw(st.binary(min_size=count, max_size=count), label=label)
        hidden = (np.frombuffer(raw, np.uint8) >= 256 - 64 * density).reshape(shape)
    if current_build_context().is_final:
        note(f"inputs.{label} (True: hidden) = {np.array2string(hidden.astype(int), separator=', ')}")
    return hidden


# --- drawing cases -----------------------------------------------------------------------------
def draw_attention(data, kind, masked=True):
    B, n, m, d_k, d_v, bound = (size(data, "B"), size(data, "n"), size(data, "m"), size(data, "d_k"),
                                size(data, "d_v"), magnitude(data))
    params, inputs = case(data, {}, {"q": Shape((B, n, d_k), bound), "k": Shape((B, m, d_k), bound),
                                     "v": Shape((B, m, d_v), bound)})
    if masked:
        inputs["mask"] = mask(data, (B, n, m), "mask")
    return params, inputs


def draw_causal(data, kind):
    return draw_attention(data, kind, masked=False)


def draw_mha(data, kind, heads=None):
    """Cross-attention in general; half the draws are self-attention (key and value are the query),
    half of the rest have key and value widths equal to d_model (a packed projection can serve)."""
    B, h, d_k = size(data, "B"), heads or size(data, "h", high=MAX_HEADS), size(data, "d_k", high=MAX_HEAD_SIZE)
    d_model, n, bound = h * d_k, size(data, "n"), magnitude(data)
    self_attention = data.draw(st.booleans(), label="self-attention")
    if self_attention:
        m, d_kin, d_vin = n, d_model, d_model
    elif data.draw(st.booleans(), label="key and value widths = d_model"):
        m, d_kin, d_vin = size(data, "m"), d_model, d_model
    else:
        m, d_kin, d_vin = size(data, "m"), size(data, "d_kin"), size(data, "d_vin")
    params = {"W_Q": Shape((h, d_model, d_k), WEIGHT_BOUND), "W_K": Shape((h, d_kin, d_k), WEIGHT_BOUND),
              "W_V": Shape((h, d_vin, d_k), WEIGHT_BOUND), "W_O": Shape((h * d_k, d_model), WEIGHT_BOUND)}
    inputs = {"query": Shape((B, n, d_model), bound)}
    if not self_attention:
        inputs |= {"key": Shape((B, m, d_kin), bound), "value": Shape((B, m, d_vin), bound)}
    params, inputs = case(data, params, inputs)
    if self_attention:
        inputs["key"], inputs["value"] = inputs["query"].copy(), inputs["query"].copy()
    inputs["attn_mask"] = mask(data, (n, m), "attn_mask")
    inputs["key_padding_mask"] = mask(data, (B, m), "key_padding_mask")
    return params, inputs


def draw_seq2seq_attention(data, kind):
    B, n, m, d_h, bound = size(data, "B"), size(data, "n"), size(data, "m"), size(data, "d_h"), magnitude(data)
    return case(data, {}, {"S": Shape((B, n, d_h), bound), "H": Shape((B, m, d_h), bound)})


def draw_pe(data, kind):
    """Embeddings x (B, n, d) with d even (the article's d_model: column pairs)."""
    B, n, d, bound = size(data, "B"), size(data, "n"), 2 * size(data, "pairs", high=4), magnitude(data)
    return case(data, {}, {"x": Shape((B, n, d), bound)})


# --- oracles -----------------------------------------------------------------------------------
def identity_values(m: int, dtype) -> np.ndarray:
    """V = I (m×m): attention with these values returns its weights (A = softmax(·) I)."""
    return np.eye(m, dtype=dtype)


def undefined(outputs: dict, hidden: np.ndarray, per_head=("weights",)) -> dict:
    """NaN in every row of a query that sees no key (its softmax is 0/0). The product by the values
    cannot be trusted to carry the NaN: BLAS may give 0 for NaN times a zero matrix.

    hidden is (…, n, m); for multi-head, (B, 1, n, m), and outputs without the head axis use [:, 0]."""
    rows = hidden.all(axis=-1)
    for name, value in outputs.items():
        where = rows[:, 0] if hidden.ndim == 4 and name not in per_head else rows
        value[np.broadcast_to(where, value.shape[:-1])] = np.nan
    return outputs


def attention_oracle(kind):
    fn = compile_equation(spec.UNSCALED if "attn.unscaled" in kind else spec.MASK_GIVEN)

    def oracle(params, inputs):
        q, k, v, hidden = inputs["q"], inputs["k"], inputs["v"], inputs["mask"]
        return undefined({"out": fn(Q=q, K=k, V=v, B_mask=hidden),
                          "weights": fn(Q=q, K=k, V=identity_values(k.shape[-2], q.dtype), B_mask=hidden)}, hidden)
    return oracle


def causal_oracle(kind):
    fn = compile_equation(spec.CAUSAL_LOWER_RIGHT if "mask.causal_lower_right" in kind else spec.MASK_CAUSAL)

    def oracle(params, inputs):
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        return undefined({"out": fn(Q=q, K=k, V=v), "weights": fn(Q=q, K=k, V=identity_values(k.shape[-2], q.dtype))},
                         hidden_keys("attention.causal", kind, inputs))
    return oracle


def mha_hidden(inputs) -> np.ndarray:
    """The keys hidden from each query of each head: (B, 1, n, m), attn_mask or key padding."""
    return inputs["attn_mask"][None, None] | inputs["key_padding_mask"][:, None, None, :]


def multi_head(params, query, key, value, hidden, weights=False) -> dict:
    """mha.head and mha.output on batches (B, ·, d): "out" and "heads" (and the weights, per head
    and averaged, if asked); hidden (B or 1, 1, n, m). Rows of a query that sees no key are NaN."""
    head, output = compile_equation(spec.MHA_HEAD), compile_equation(spec.MHA_OUTPUT)
    xq, xk, xv = query[:, None], key[:, None], value[:, None]  # a head axis
    heads = head(X_q=xq, X_k=xk, X_v=xv, W_Q=params["W_Q"], W_K=params["W_K"], W_V=params["W_V"], B_mask=hidden)
    B, h, n, d_v = heads.shape
    Z = heads.transpose(0, 2, 1, 3).reshape(B, n, h * d_v)  # head 1's columns first
    found = {"out": output(Z_heads=Z, W_O=params["W_O"]), "heads": Z}
    if weights:
        eye = identity_values(xk.shape[-2], xq.dtype)
        found["weights"] = head(X_q=xq, X_k=xk, X_v=eye, W_Q=params["W_Q"], W_K=params["W_K"], W_V=eye, B_mask=hidden)
        found["mean_weights"] = found["weights"].mean(axis=1)
    return undefined(found, hidden)


def mha_oracle(kind):
    def oracle(params, inputs):
        return multi_head(params, inputs["query"], inputs["key"], inputs["value"], mha_hidden(inputs), weights=True)
    return oracle


def seq2seq_attention_oracle(kind):
    def oracle(params, inputs):
        env = evaluate_chain((spec.ATTN_SCORE, spec.ATTN_WEIGHTS, spec.ATTN_CONTEXT),
                             {"S": inputs["S"], "H_enc": inputs["H"]})
        return {"context": env["C_ctx"], "weights": env["alpha"], "scores": env["E"]}
    return oracle


def pe_oracle(kind):
    layout = positional.PE_CONCAT if "pe.concat" in kind else positional.PE_INPUT
    total = compile_equation(positional.PE_SCALED if "pe.scaled_input" in kind else layout)
    alone = compile_equation(layout)

    def oracle(params, inputs):
        x = inputs["x"]
        return {"out": total(X=x), "P": alone(X=np.zeros(x.shape[-2:], x.dtype))}
    return oracle


def hidden_keys(component: str, kind, inputs) -> np.ndarray | None:
    """Where each weight must be exactly 0, broadcastable to the weights; None if no key is hidden."""
    if component == "attention":
        return inputs["mask"]
    if component == "mha":
        return mha_hidden(inputs)
    if component == "attention.causal":
        n, m = inputs["q"].shape[-2], inputs["k"].shape[-2]
        return np.triu(np.ones((n, m), dtype=bool), k=1 + (m - n if "mask.causal_lower_right" in kind else 0))
    return None
