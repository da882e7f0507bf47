"""The §4 components: layer normalisation, the FFN, the encoder and decoder layers, the classifier;
how to draw their cases, and their oracles (the spec, in NumPy, any dtype).

A `kind` is the tuple of variants the subject declares: enc.attn.pre_ln / enc.ffn.pre_ln (and
the dec.*.pre_ln) put LN inside the residual branch; ffn.gelu swaps ReLU for GELU; a mask form
says how the encoder's key padding reaches the subject. Biases are 1-D in the subject's layout
and 1×d rows in the spec's.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from nlpspec.spec import transformer as spec
from nlpspec.spec.oracle import compile_equation

from . import attention as att
from .strategies import Shape, case, magnitude, size

MAX_HEADS, MAX_HEAD_SIZE, MAX_FF = 3, 2, 4
PARAM_BOUND = 1.0  # weights, γ and β: with inputs up to 8, float16 stays finite


def rows(params: dict) -> dict:
    """Subject layout -> spec layout: a 1-D bias or γ/β becomes a 1×d row."""
    return {k: v[None, :] if v.ndim == 1 else v for k, v in params.items()}


def mha_params(h, d_model, d_k) -> dict:
    return {"W_Q": Shape((h, d_model, d_k), PARAM_BOUND), "W_K": Shape((h, d_model, d_k), PARAM_BOUND),
            "W_V": Shape((h, d_model, d_k), PARAM_BOUND), "W_O": Shape((h * d_k, d_model), PARAM_BOUND)}


def ffn_params(d_model, d_ff) -> dict:
    return {"W_1": Shape((d_model, d_ff), PARAM_BOUND), "b_1": Shape((d_ff,), PARAM_BOUND),
            "W_2": Shape((d_ff, d_model), PARAM_BOUND), "b_2": Shape((d_model,), PARAM_BOUND)}


def norms(count, d_model) -> dict:
    return {f"{p}_{k}": Shape((d_model,), PARAM_BOUND) for k in range(1, count + 1) for p in ("gamma", "beta")}


def widths(data):
    h, d_k = size(data, "h", high=MAX_HEADS), size(data, "d_k", high=MAX_HEAD_SIZE)
    return h, d_k, h * d_k, size(data, "d_ff", high=MAX_FF)


# --- drawing cases -----------------------------------------------------------------------------
def draw_layernorm(data, kind):
    B, n, d, bound = size(data, "B"), size(data, "n"), size(data, "d"), magnitude(data)
    return case(data, {"gamma": Shape((d,), PARAM_BOUND), "beta": Shape((d,), PARAM_BOUND)},
                {"x": Shape((B, n, d), bound)})


def draw_ffn(data, kind):
    B, n, d, d_ff, bound = size(data, "B"), size(data, "n"), size(data, "d"), size(data, "d_ff"), magnitude(data)
    return case(data, ffn_params(d, d_ff), {"z": Shape((B, n, d), bound)})


def draw_encoder_layer(data, kind):
    B, n, bound = size(data, "B"), size(data, "n"), magnitude(data)
    h, d_k, d_model, d_ff = widths(data)
    params, inputs = case(data, {"attn": mha_params(h, d_model, d_k), **ffn_params(d_model, d_ff), **norms(2, d_model)},
                          {"x": Shape((B, n, d_model), bound)})
    inputs["key_padding_mask"] = att.mask(data, (B, n), "key_padding_mask")
    return params, inputs


def draw_decoder_layer(data, kind):
    B, m, n, bound = size(data, "B"), size(data, "m"), size(data, "n"), magnitude(data)
    h, d_k, d_model, d_ff = widths(data)
    params = {"self_attn": mha_params(h, d_model, d_k), "cross_attn": mha_params(h, d_model, d_k),
              **ffn_params(d_model, d_ff), **norms(3, d_model)}
    return case(data, params, {"y": Shape((B, m, d_model), bound), "memory": Shape((B, n, d_model), bound)})


def draw_stack(draw_layer):
    """N layers (1 to 3) of the same widths: the first layer's case, then N - 1 more parameter sets."""
    def draw(data, kind):
        layers = size(data, "N", high=3)
        params, inputs = draw_layer(data, kind)
        shapes = layer_shapes(params)
        more = [case(data, shapes, {})[0] for _ in range(layers - 1)]
        return {"layers": [params, *more]}, inputs
    return draw


def layer_shapes(params):
    return {k: layer_shapes(v) if isinstance(v, dict) else Shape(v.shape, PARAM_BOUND) for k, v in params.items()}


def token_ids(data, shape, vocabulary, label):
    """Token ids in [0, vocabulary), one draw; shrinks towards token 0 (⟨bos⟩)."""
    count = int(np.prod(shape))
    raw = data.draw(st.binary(min_size=count, max_size=count), label=label)
    return (np.frombuffer(raw, np.uint8).astype(np.int64) % vocabulary).reshape(shape)


def draw_model(data, kind):
    """Source and target token ids, the embeddings, N encoder and N decoder layers, the classifier."""
    B, n, m, V = size(data, "B"), size(data, "n"), size(data, "m"), size(data, "V", low=2, high=6)
    V_src = size(data, "V_src", low=2, high=6)
    enc_layers, dec_layers = size(data, "N_enc", high=2), size(data, "N_dec", high=2)
    h, d_k, d_model, d_ff = widths(data)
    enc = {"attn": mha_params(h, d_model, d_k), **ffn_params(d_model, d_ff), **norms(2, d_model)}
    dec = {"self_attn": mha_params(h, d_model, d_k), "cross_attn": mha_params(h, d_model, d_k),
           **ffn_params(d_model, d_ff), **norms(3, d_model)}
    bound = magnitude(data)
    params = {"src_embedding": Shape((V_src, d_model), bound), "tgt_embedding": Shape((V, d_model), bound),
              "encoder": {"layers": [enc] * enc_layers}, "decoder": {"layers": [dec] * dec_layers},
              "W_c": Shape((d_model, V), PARAM_BOUND), "b_c": Shape((V,), PARAM_BOUND)}
    if "stack.final_norm" in kind:
        params |= {"encoder_norm": norms(1, d_model), "decoder_norm": norms(1, d_model)}
    if "classifier.tied" in kind:
        del params["W_c"]  # the target embedding serves
    params = case(data, params, {})[0]
    inputs = {"src": token_ids(data, (B, n), V_src, "src"), "tgt": token_ids(data, (B, m), V, "tgt"),
              "src_key_padding_mask": att.mask(data, (B, n), "src_key_padding_mask")}
    return params, inputs


def draw_classifier(data, kind):
    B, m, d, V, bound = size(data, "B"), size(data, "m"), size(data, "d_model"), size(data, "V"), magnitude(data)
    return case(data, {"W_c": Shape((d, V), PARAM_BOUND), "b_c": Shape((V,), PARAM_BOUND)},
                {"d": Shape((B, m, d), bound)})


# --- oracles -----------------------------------------------------------------------------------
def layernorm_oracle(kind):
    fn = compile_equation(spec.LAYERNORM)
    return lambda params, inputs: {"out": fn(X=inputs["x"], **rows(params))}


def ffn_oracle(kind):
    fn = compile_equation(spec.FFN_GELU if "ffn.gelu" in kind else spec.FFN)
    return lambda params, inputs: {"out": fn(Z=inputs["z"], **rows(params))}


def normalised(x, params, k):
    return compile_equation(spec.LAYERNORM)(X=x, gamma=params[f"gamma_{k}"], beta=params[f"beta_{k}"])


# E-id -> (post-LN equation, its input, its sublayer-output symbol, pre-LN equation, its symbol, LN index)
SUBLAYERS = {
    "enc.attn": (spec.ENC_ATTN, "X", "O_self", spec.PRE_LN_ATTN, "O_pre", 1),
    "dec.self": (spec.DEC_SELF, "Y", "O_mask", spec.PRE_LN_SELF, "O_mask_pre", 1),
    "dec.cross": (spec.DEC_CROSS, "A", "O_cross", spec.PRE_LN_CROSS, "O_cross_pre", 2),
    "enc.ffn": (spec.ENC_FFN, "Z", "F_Z", spec.PRE_LN_FFN, "F_Z_pre", 2),
    "dec.ffn": (spec.DEC_FFN, "B", "F_B", spec.PRE_LN_DEC_FFN, "F_B_pre", 3),
}


def sublayer(eid, x, p, kind, inner):
    """The residual block `eid` around inner (a function of the normalised or raw input): post-LN,
    LN(x + inner(x)), or, with the variant eid.pre_ln, x + inner(LN(x))."""
    post, x_name, o_name, pre, pre_name, k = SUBLAYERS[eid]
    if f"{eid}.pre_ln" in kind:
        return compile_equation(pre)(**{x_name: x, pre_name: inner(normalised(x, p, k))})
    return compile_equation(post)(**{x_name: x, o_name: inner(x), f"gamma_{k}": p[f"gamma_{k}"],
                                     f"beta_{k}": p[f"beta_{k}"]})


def attending(p, attn, hidden, memory=None):
    return lambda q: att.multi_head(p[attn], q, q if memory is None else memory, q if memory is None else memory,
                                    hidden)["out"]


def feeding(p, kind):
    ffn = compile_equation(spec.FFN_GELU if "ffn.gelu" in kind else spec.FFN)
    return lambda z: ffn(Z=z, **{name: p[name] for name in ("W_1", "b_1", "W_2", "b_2")})


def encoder_layer_oracle(kind):
    def oracle(params, inputs):
        p, x = rows_of_layer(params), inputs["x"]
        B, n = inputs["key_padding_mask"].shape
        hidden = np.broadcast_to(inputs["key_padding_mask"][:, None, None, :], (B, 1, n, n))
        z = sublayer("enc.attn", x, p, kind, attending(p, "attn", hidden))
        return {"Z": z, "out": sublayer("enc.ffn", z, p, kind, feeding(p, kind))}
    return oracle


def decoder_layer_oracle(kind):
    def oracle(params, inputs):
        p, y, memory = rows_of_layer(params), inputs["y"], inputs["memory"]
        (B, m), n = y.shape[:2], memory.shape[1]
        causal = np.triu(np.ones((m, m), dtype=bool), 1)[None, None]
        padding = inputs.get("memory_key_padding_mask", np.zeros((B, n), dtype=bool))
        a = sublayer("dec.self", y, p, kind, attending(p, "self_attn", causal))
        b = sublayer("dec.cross", a, p, kind,
                     attending(p, "cross_attn", np.broadcast_to(padding[:, None, None, :], (B, 1, m, n)), memory))
        return {"A": a, "B": b, "out": sublayer("dec.ffn", b, p, kind, feeding(p, kind))}
    return oracle


def encoder_stack_oracle(kind):
    layer = encoder_layer_oracle(kind)

    def oracle(params, inputs):
        x = inputs["x"]
        for p in params["layers"]:
            x = layer(p, {**inputs, "x": x})["out"]
        return {"out": x}
    return oracle


def decoder_stack_oracle(kind):
    layer = decoder_layer_oracle(kind)

    def oracle(params, inputs):
        y = inputs["y"]
        for p in params["layers"]:
            y = layer(p, {**inputs, "y": y})["out"]
        return {"out": y}
    return oracle


def shift_right(tgt: np.ndarray) -> np.ndarray:
    """pe.shift_right: ⟨bos⟩ (token 0) first, the last target dropped."""
    return np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], axis=1)


def embedded(table, ids, kind):
    """pe.input (or pe.scaled_input): the embeddings of ids plus P, in the table's dtype."""
    from nlpspec.spec import positional
    x = table[ids]
    return compile_equation(positional.PE_SCALED if "pe.scaled_input" in kind else positional.PE_INPUT)(X=x)


def model_oracle(kind):
    encode, decode = encoder_stack_oracle(kind), decoder_stack_oracle(kind)
    tied = "classifier.tied" in kind
    classify = compile_equation(spec.TIED if tied else spec.CLASSIFIER)

    def oracle(params, inputs):
        src, tgt = inputs["src"], inputs["tgt"]
        x = embedded(params["src_embedding"], src, kind)
        padding = inputs["src_key_padding_mask"]
        memory = encode(params["encoder"], {"x": x, "key_padding_mask": padding})["out"]
        if "stack.final_norm" in kind:
            memory = normalised(memory, rows(params["encoder_norm"]), 1)
        y = embedded(params["tgt_embedding"], shift_right(tgt), kind)
        out = decode(params["decoder"], {"y": y, "memory": memory, "memory_key_padding_mask": padding})["out"]
        if "stack.final_norm" in kind:
            out = normalised(out, rows(params["decoder_norm"]), 1)
        weights = {"Emb": params["tgt_embedding"]} if tied else {"W_c": params["W_c"]}
        return {"out": classify(D=out, b_c=params["b_c"][None, :], **weights), "memory": memory}
    return oracle


def rows_of_layer(params: dict) -> dict:
    return {k: v if isinstance(v, dict) else rows({k: v})[k] for k, v in params.items()}


def classifier_oracle(kind):
    fn = compile_equation(spec.CLASSIFIER)
    return lambda params, inputs: {"out": fn(D=inputs["d"], **rows(params))}


ENCODER_VARIANTS = ("enc.attn.pre_ln", "enc.ffn.pre_ln", "ffn.gelu") + att.MASK_FORMS
DECODER_VARIANTS = ("dec.self.pre_ln", "dec.cross.pre_ln", "dec.ffn.pre_ln", "ffn.gelu")
MODEL_VARIANTS = tuple(dict.fromkeys(ENCODER_VARIANTS + DECODER_VARIANTS)) + \
    ("stack.final_norm", "pe.scaled_input", "classifier.tied")
