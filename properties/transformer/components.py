"""The Transformer components (§4): layer normalisation (and RMSNorm, an extension), the FFN, the encoder
and decoder layers, the classifier; how to draw their cases, and their oracles: spec/transformer.py's,
called on the subject's names.

A `kind` is the tuple of variants the subject declares: enc.attn.pre_ln / enc.ffn.pre_ln (and
the dec.*.pre_ln) put LN inside the residual branch; ffn.gelu swaps ReLU for GELU; a mask form
says how the encoder's key padding reaches the subject. Biases are 1-D in the subject's layout
and 1×d rows in the spec's.
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import note
from hypothesis.control import current_build_context

from nlpspec.spec import transformer as spec
from nlpspec.spec.oracle import compile_equation

from ..attention import components as att
from ..engine.component import MASK_FORMS, Component
from ..engine.ran import headed_as_run
from ..engine.strategies import (Shape, arrays, case, magnitude, past_cancellation, past_overflow, past_square_overflow,
                                 raw_bytes, size, squares_room)

MAX_HEADS, MAX_HEAD_SIZE, MAX_FF = 3, 2, 4
PARAM_BOUND = 1.0  # weights, γ and β: with inputs up to 8, float16 stays finite


def rows(params):
    """Subject layout -> spec layout, through nested layers: a 1-D bias or γ/β becomes a 1×d row."""
    if params is None:
        return None
    if isinstance(params, dict):
        return {k: rows(v) for k, v in params.items()}
    if isinstance(params, list):
        return [rows(v) for v in params]
    return params[None, :] if params.ndim == 1 else params


def mha_params(h, d_model, d_k, q_bound=PARAM_BOUND) -> dict:
    return {"W_Q": Shape((h, d_model, d_k), q_bound), "W_K": Shape((h, d_model, d_k), PARAM_BOUND),
            "W_V": Shape((h, d_model, d_k), PARAM_BOUND), "W_O": Shape((h * d_k, d_model), PARAM_BOUND),
            **att.mha_biases(h, d_k, d_model, PARAM_BOUND)}


def ffn_params(d_model, d_ff) -> dict:
    return {"W_1": Shape((d_model, d_ff), PARAM_BOUND), "b_1": Shape((d_ff,), PARAM_BOUND),
            "W_2": Shape((d_ff, d_model), PARAM_BOUND), "b_2": Shape((d_model,), PARAM_BOUND)}


def norms(count, d_model) -> dict:
    return {f"{p}_{k}": Shape((d_model,), PARAM_BOUND) for k in range(1, count + 1) for p in ("gamma", "beta")}


def weight_bound(extreme, *widths) -> float:
    """The bound of W_Q (or W_c) that puts a sum over these widths' random terms (entries about 1, as
    a LayerNorm's are) at `extreme`, a score or logit past exp's overflow in the run's dtype
    (past_overflow(data, 1.0), a quarter of the cases), or PARAM_BOUND (a tame case: None). So the
    softmax of a layer's attention (pre-LN too) and the model's classifier reach the overflow."""
    return PARAM_BOUND if extreme is None else extreme / (np.sqrt(np.prod(widths)) / 3)


def widths(data):
    h, d_k = size(data, "h", high=MAX_HEADS), size(data, "d_k", high=MAX_HEAD_SIZE)
    return h, d_k, h * d_k, size(data, "d_ff", high=MAX_FF)


# --- drawing cases -----------------------------------------------------------------------------
def draw_layernorm(data, kind):
    """Inputs past the squares' overflow in a quarter of the cases (float16), and (where they are not)
    rows offset far from 0 against their spread in a quarter: offset_rows."""
    overflowing = past_square_overflow(data)
    ratio = None if overflowing else past_cancellation(data)
    B, n, bound = size(data, "B"), size(data, "n"), magnitude(data)
    d = size(data, "d", low=1 if ratio is None else 2)  # a row of one feature has no spread to lose
    if overflowing:
        bound = overflowing
    elif ratio is not None:  # offset and spread within the squares' room (float16)
        bound = min(bound, squares_room() / (ratio + 1))
    params, inputs = case(data, {"gamma": Shape((d,), PARAM_BOUND), "beta": Shape((d,), PARAM_BOUND)},
                          {"x": Shape((B, n, d), bound)})
    return params, inputs if ratio is None else {"x": offset_rows(data, inputs["x"], ratio * bound)}


def offset_rows(data, x, largest):
    """x with a common offset added to each row (one draw: the offsets, up to `largest`, printed as
    "row offsets"): rows whose mean is large against their spread, where a one-pass variance cancels
    (strategies.past_cancellation). The offsets shrink towards 0, the tame rows."""
    offsets = arrays(data, {"row offsets": Shape(x.shape[:-1] + (1,), largest)})["row offsets"]
    if current_build_context().is_final:
        note("inputs.x given: the inputs.x above plus its row's offset")
    return x + offsets


def draw_rmsnorm(data, kind):
    """As LayerNorm's, with γ alone: inputs past the squares' overflow in a quarter of the cases."""
    B, n, d, bound = size(data, "B"), size(data, "n"), size(data, "d"), magnitude(data)
    bound = past_square_overflow(data) or bound
    return case(data, {"gamma": Shape((d,), PARAM_BOUND)}, {"x": Shape((B, n, d), bound)})


def draw_ffn(data, kind):
    B, n, d, d_ff, bound = size(data, "B"), size(data, "n"), size(data, "d"), size(data, "d_ff"), magnitude(data)
    return case(data, ffn_params(d, d_ff), {"z": Shape((B, n, d), bound)})


def padding(data, shape, label, lacks):
    """A key padding mask, or none where the subject lacks key padding."""
    return np.zeros(shape, bool) if "key_padding" in lacks else att.mask(data, shape, label)


def draw_encoder_layer(data, kind, lacks=frozenset()):
    B, n, bound = size(data, "B"), size(data, "n"), magnitude(data)
    h, d_k, d_model, d_ff = widths(data)
    q_bound = weight_bound(past_overflow(data, 1.0), d_model, d_model, d_k)
    params, inputs = case(data, {"attn": mha_params(h, d_model, d_k, q_bound), **ffn_params(d_model, d_ff),
                                 **norms(2, d_model)}, {"x": Shape((B, n, d_model), bound)})
    inputs["key_padding_mask"] = padding(data, (B, n), "key_padding_mask", lacks)
    return params, inputs


def draw_decoder_layer(data, kind, lacks=frozenset()):
    B, m, n, bound = size(data, "B"), size(data, "m"), size(data, "n"), magnitude(data)
    h, d_k, d_model, d_ff = widths(data)
    q_bound = weight_bound(past_overflow(data, 1.0), d_model, d_model, d_k)
    params = {"self_attn": mha_params(h, d_model, d_k, q_bound), "cross_attn": mha_params(h, d_model, d_k, q_bound),
              **ffn_params(d_model, d_ff), **norms(3, d_model)}
    return case(data, params, {"y": Shape((B, m, d_model), bound), "memory": Shape((B, n, d_model), bound)})


def draw_causal_mha(data, kind):
    """One sequence x (B, n, d_model) and the multi-head weights and biases of its self-attention;
    with mask.sliding_window, its window (properties/attention/components.py)."""
    B, n, bound = size(data, "B"), size(data, "n", high=att.longest()), magnitude(data)
    h, d_k = size(data, "h", high=att.MAX_HEADS), size(data, "d_k", high=att.MAX_HEAD_SIZE)
    extreme = past_overflow(data, np.sqrt(h * d_k * h * d_k * d_k) / 3)  # keys are the queries: per bound²
    bound = bound if extreme is None else np.sqrt(extreme)
    params, inputs = case(data, mha_params(h, h * d_k, d_k), {"x": Shape((B, n, h * d_k), bound)})
    return params, att.drawn_window(data, kind, inputs, n)


def draw_decoder_only_layer(data, kind):
    B, n, bound = size(data, "B"), size(data, "n"), magnitude(data)
    h, d_k, d_model, d_ff = widths(data)
    q_bound = weight_bound(past_overflow(data, 1.0), d_model, d_model, d_k)
    return case(data, {"self_attn": mha_params(h, d_model, d_k, q_bound), **ffn_params(d_model, d_ff),
                       **norms(2, d_model)},
                {"x": Shape((B, n, d_model), bound)})


def draw_stack(draw_layer):
    """N layers (1 to 3) of the same widths: the first layer's case, then N - 1 more parameter sets."""
    def draw(data, kind, lacks=frozenset()):
        layers = size(data, "N", high=3)
        params, inputs = draw_layer(data, kind, lacks=lacks)
        shapes = layer_shapes(params)
        more = [case(data, shapes, {})[0] for _ in range(layers - 1)]
        final = {"norm": case(data, norms(1, params["gamma_1"].shape[0]), {})[0]} if "stack.final_norm" in kind else {}
        return {"layers": [params, *more], **final}, inputs
    return draw


def layer_shapes(params):
    return {k: layer_shapes(v) if isinstance(v, dict) else Shape(v.shape, PARAM_BOUND) for k, v in params.items()}


def token_ids(data, shape, vocabulary, label):
    """Token ids in [0, vocabulary), one draw; shrinks towards token 0 (⟨bos⟩)."""
    count = int(np.prod(shape))
    return (raw_bytes(data, count, label).astype(np.int64) % vocabulary).reshape(shape)


def draw_model(data, kind, lacks=frozenset()):
    """Source and target token ids, the embeddings, N encoder and N decoder layers, the classifier."""
    B, n, m, V = size(data, "B"), size(data, "n"), size(data, "m"), size(data, "V", low=2, high=6)
    V_src = size(data, "V_src", low=2, high=6)
    enc_layers, dec_layers = size(data, "N_enc", high=2), size(data, "N_dec", high=2)
    h, d_k, d_model, d_ff = widths(data)
    extreme = past_overflow(data, 1.0)
    q_bound = weight_bound(extreme, d_model, d_model, d_k)
    enc = {"attn": mha_params(h, d_model, d_k, q_bound), **ffn_params(d_model, d_ff), **norms(2, d_model)}
    dec = {"self_attn": mha_params(h, d_model, d_k, q_bound), "cross_attn": mha_params(h, d_model, d_k, q_bound),
           **ffn_params(d_model, d_ff), **norms(3, d_model)}
    bound = magnitude(data)
    params = {"src_embedding": Shape((V_src, d_model), bound), "tgt_embedding": Shape((V, d_model), bound),
              "encoder": {"layers": [enc] * enc_layers}, "decoder": {"layers": [dec] * dec_layers},
              "W_c": Shape((d_model, V), weight_bound(extreme, d_model)), "b_c": Shape((V,), PARAM_BOUND)}
    if "stack.final_norm" in kind:
        params |= {"encoder_norm": norms(1, d_model), "decoder_norm": norms(1, d_model)}
    if "classifier.tied" in kind:
        del params["W_c"]  # the target embedding serves
    params = case(data, params, {})[0]
    inputs = {"src": token_ids(data, (B, n), V_src, "src"), "tgt": token_ids(data, (B, m), V, "tgt"),
              "src_key_padding_mask": padding(data, (B, n), "src_key_padding_mask", lacks)}
    return params, inputs


def draw_classifier(data, kind):
    B, m, d, V, bound = size(data, "B"), size(data, "m"), size(data, "d_model"), size(data, "V"), magnitude(data)
    bound = past_overflow(data, PARAM_BOUND * np.sqrt(d) / 3) or bound  # logits: d random terms
    return case(data, {"W_c": Shape((d, V), PARAM_BOUND), "b_c": Shape((V,), PARAM_BOUND)},
                {"d": Shape((B, m, d), bound)})


# --- oracles: spec/transformer.py's, under the subject's names ---------------------------------
def largest(dtype) -> float:
    """The largest finite value of a torch, NumPy or ml_dtypes dtype."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).max)
    if dtype.kind == "f":
        return float(np.finfo(dtype).max)
    import ml_dtypes  # loaded already where an array is its bfloat16
    return float(ml_dtypes.finfo(dtype).max)


def squares_overflow(x, centred=True) -> bool:
    """Can the squares of x's deviations from its rows' means (centred=False: of x itself), or their sums,
    overflow in x's own dtype (NumPy, ml_dtypes or torch)? Never in float64 (what the oracle and its
    rounded samples run in)."""
    if largest(x.dtype) >= np.finfo(np.float64).max:
        return False
    a = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    return bool((((a - a.mean(-1, keepdims=True) * centred) ** 2).sum(-1) > largest(x.dtype)).any())


def norm_oracle(equation, centred=True):
    """The kind -> oracle of a norm (the spec's LayerNorm, RMSNorm); NaN where it is evaluated in a dtype
    its squares overflow in: that evaluation (the tolerance rule's baseline in float16) is no value, so
    it bounds nothing (tolerance.baseline_error) and the sensitivity judges the case."""
    def make(kind):
        fn = compile_equation(equation)

        def oracle(params, inputs):
            with np.errstate(over="ignore", invalid="ignore"):
                out = fn(X=inputs["x"], **rows(params))
            return {"out": out * float("nan") if squares_overflow(inputs["x"], centred) else out}
        return oracle
    return make


layernorm_oracle = norm_oracle(spec.LAYERNORM)
rmsnorm_oracle = norm_oracle(spec.RMSNORM, centred=False)


def ffn_oracle(kind):
    return lambda params, inputs: {"out": spec.feed_forward(rows(params), inputs["z"], kind)}


def encoder_layer_oracle(kind):
    return lambda params, inputs: att.named(spec.encoder_layer(rows(params), inputs["x"], inputs["key_padding_mask"],
                                                               kind), Z="Z", out="E")


def decoder_layer_oracle(kind):
    return lambda params, inputs: att.named(spec.decoder_layer(rows(params), inputs["y"], inputs["memory"],
                                                               inputs.get("memory_key_padding_mask"), kind),
                                            A="A", B="B", out="D")


def causal_mha_oracle(kind):
    def oracle(params, inputs):
        if att.windowless(kind, inputs):
            return None
        found = spec.causal_self_attention(params, inputs["x"], att.window(kind, inputs))
        return {**att.named(found, out="O", heads="Z_heads", weights="weights")}
    return oracle


def decoder_only_layer_oracle(kind):
    return lambda params, inputs: att.named(spec.decoder_only_layer(rows(params), inputs["x"], kind), Z="Z", out="E")


def causal_hidden(kind, inputs):
    """The keys mask.causal (or mask.sliding_window) hides from each query of one sequence, with a head
    axis (1, 1, n, n)."""
    n = inputs["x"].shape[-2]
    return spec.hidden_keys(n, n, causal=True, window=att.window(kind, inputs))[None, None]


def encoder_stack_oracle(kind):
    return lambda params, inputs: {"out": spec.encoder(rows(params["layers"]), inputs["x"], inputs["key_padding_mask"],
                                                       kind, rows(params.get("norm")))}


def decoder_stack_oracle(kind):
    return lambda params, inputs: {"out": spec.decoder(rows(params["layers"]), inputs["y"], inputs["memory"],
                                                       inputs.get("memory_key_padding_mask"), kind,
                                                       rows(params.get("norm")))}


def model_oracle(kind):
    return lambda params, inputs: att.named(spec.model(rows(params), inputs["src"], inputs["tgt"],
                                                       inputs["src_key_padding_mask"], kind), out="p", memory="E")


def classifier_oracle(kind):
    fn = compile_equation(spec.CLASSIFIER)
    return lambda params, inputs: {"out": fn(D=inputs["d"], **rows(params))}


ENCODER_VARIANTS = ("enc.attn.pre_ln", "enc.ffn.pre_ln", "ffn.gelu") + MASK_FORMS
DECODER_VARIANTS = ("dec.self.pre_ln", "dec.cross.pre_ln", "dec.ffn.pre_ln", "ffn.gelu")
MODEL_VARIANTS = tuple(dict.fromkeys(ENCODER_VARIANTS + DECODER_VARIANTS)) + \
    ("stack.final_norm", "pe.scaled_input", "classifier.tied")


DECODER_ONLY_VARIANTS = ("dec.self.pre_ln", "enc.ffn.pre_ln", "ffn.gelu", "ffn.gelu_tanh")
PROBABILITY = dict(bounds={"out": (0.0, 1.0)}, probabilities=("out",))  # a softmax over the vocabulary
EPSILON = dict(constants=("layernorm.epsilon",))
PADDING = {"key_padding": "key padding not checked"}
ENCODER_BLOCKS = (("enc.attn", "attn"), ("enc.ffn", "ffn"))
DECODER_BLOCKS = (("dec.self", "self_attn"), ("dec.cross", "cross_attn"), ("dec.ffn", "ffn"))


def pre_ln(variants) -> tuple:
    """The pre-LN variants among these: a subject switches them all at once (norm_first)."""
    return tuple(v for v in variants if v.endswith(".pre_ln"))


ENCODER = dict(variants=ENCODER_VARIANTS, mask_forms=MASK_FORMS, switched_together=pre_ln(ENCODER_VARIANTS),
               capabilities=PADDING, source="x", masks=("key_padding_mask",), **EPSILON)
DECODER = dict(variants=DECODER_VARIANTS, switched_together=pre_ln(DECODER_VARIANTS), target="y", memory="memory",
               causal=True, **EPSILON)
STACK = dict(replaces={"stack.final_norm": ()})

COMPONENTS = headed_as_run([  # a failure headed by the E-id that ran (engine/ran.py)
    Component(name="layernorm", family="transformer", eids=("layernorm",), required=("out",), draw=draw_layernorm,
              oracle=layernorm_oracle, output_eids={"out": "layernorm"}, **EPSILON),
    Component(name="rmsnorm", family="transformer", eids=("rmsnorm",), required=("out",), draw=draw_rmsnorm,
              oracle=rmsnorm_oracle, output_eids={"out": "rmsnorm"}, constants=("rmsnorm.epsilon",)),
    Component(name="ffn", family="transformer", eids=("ffn",), required=("out",), draw=draw_ffn, oracle=ffn_oracle,
              output_eids={"out": "ffn"}, variants=("ffn.gelu", "ffn.gelu_tanh")),
    Component(name="encoder.layer", family="transformer",
              eids=("self.qkv", "mha.head", "mha.output", "mask.key_padding", "layernorm", "ffn", "enc.attn",
                    "enc.ffn"),
              required=("out",), draw=draw_encoder_layer, oracle=encoder_layer_oracle,
              output_eids={"Z": "enc.attn", "out": "enc.ffn"}, blocks=ENCODER_BLOCKS, **ENCODER),
    Component(name="decoder.layer", family="transformer",
              eids=("mask.causal", "mha.head", "mha.output", "layernorm", "ffn", "dec.self", "dec.cross", "dec.ffn"),
              required=("out",), draw=draw_decoder_layer, oracle=decoder_layer_oracle,
              output_eids={"A": "dec.self", "B": "dec.cross", "out": "dec.ffn"}, blocks=DECODER_BLOCKS, **DECODER),
    Component(name="mha.causal", family="transformer", eids=("self.qkv", "mha.head", "mha.output", "mask.causal"),
              required=("out",), draw=draw_causal_mha, oracle=causal_mha_oracle,
              output_eids={"out": "mha.output", "heads": "mha.head", "weights": "mha.head"},
              bounds={"weights": (0.0, 1.0)}, probabilities=("weights",), hidden_keys=causal_hidden,
              variants=(att.SLIDING,), constants=(att.WINDOW,), shared=("window",),
              target="x", causal=True, heads=True, incremental=True),
    Component(name="decoder_only.layer", family="transformer",
              eids=("mask.causal", "mha.head", "mha.output", "layernorm", "ffn", "dec.self", "enc.ffn"),
              required=("out",), draw=draw_decoder_only_layer, oracle=decoder_only_layer_oracle,
              output_eids={"Z": "dec.self", "out": "enc.ffn"}, variants=DECODER_ONLY_VARIANTS,
              switched_together=pre_ln(DECODER_ONLY_VARIANTS), blocks=(("dec.self", "self_attn"), ("enc.ffn", "ffn")),
              target="x", causal=True, incremental=True, **EPSILON),
    Component(name="classifier", family="transformer", eids=("classifier",), required=("out",), draw=draw_classifier,
              oracle=classifier_oracle, output_eids={"out": "classifier"}, **PROBABILITY),
    Component(name="encoder", family="transformer",
              eids=("enc.attn", "enc.ffn", "mask.key_padding", "transformer.encoder"), required=("out",),
              draw=draw_stack(draw_encoder_layer), oracle=encoder_stack_oracle,
              output_eids={"out": "transformer.encoder"}, layer="encoder.layer",
              **(ENCODER | {"variants": ENCODER_VARIANTS + ("stack.final_norm",)}), **STACK),
    Component(name="decoder", family="transformer",
              eids=("mask.causal", "dec.self", "dec.cross", "dec.ffn", "transformer.decoder"), required=("out",),
              draw=draw_stack(draw_decoder_layer), oracle=decoder_stack_oracle,
              output_eids={"out": "transformer.decoder"}, layer="decoder.layer", incremental=True,
              **(DECODER | {"variants": DECODER_VARIANTS + ("stack.final_norm",)}), **STACK),
    Component(name="transformer", family="transformer",
              eids=("pe.input", "pe.shift_right", "mask.key_padding", "transformer.encoder", "transformer.decoder",
                    "classifier", "transformer.model"),
              required=("out",), draw=draw_model, oracle=model_oracle,
              output_eids={"out": "transformer.model", "memory": "transformer.encoder"},
              variants=MODEL_VARIANTS, mask_forms=MASK_FORMS, switched_together=pre_ln(MODEL_VARIANTS), **STACK,
              **PROBABILITY, capabilities=PADDING, constants=("layernorm.epsilon", "pe.base"),
              source="src", target="tgt", masks=("src_key_padding_mask",), causal=True, incremental=True),
])
