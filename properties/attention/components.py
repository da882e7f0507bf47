"""The attention components (§3–4): attention, causal attention, multi-head attention, seq2seq attention and
positional encoding; how to draw their cases, and their oracles: spec/attention.py's and
spec/positional.py's, called on the subject's names.

A `kind` here is the tuple of named variants the subject declares (empty: the article's). Masks
are drawn as boolean arrays, True where a key is hidden from a query (the spec's B); the harness
hands them to the subject in the form it declares (see subjects/protocol.py).

The sliding window (mask.sliding_window) is a variant with a constant, mask.window (spec/constants.py).
A subject that fixes its window (a config's sliding_window) declares it: every case is drawn under
that window, with sequences long enough to pass it (up to w + 1 positions, at most REACH). A subject
that takes the window as an input is given one per case, `window` (an int64 scalar, no batch axis),
drawn from 1 to one past the longer sequence (a window at least as long as the sequence is plain
mask.causal, and a subject must treat it so).
"""
from __future__ import annotations

import numpy as np
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.control import current_build_context

from nlpspec.spec import attention as spec
from nlpspec.spec import positional
from nlpspec.spec.constants import declared, in_force

from ..engine.component import MASK_FORMS, Component
from ..engine.ran import headed_as_run
from ..engine.strategies import MAX_SIZE, Shape, case, magnitude, past_overflow, raw_bytes, size
MAX_HEADS = 4        # several heads, so that a head split that mixes heads shows
MAX_HEAD_SIZE = 3    # d_k = d_v of one head; d_model = heads · d_k
WEIGHT_BOUND = 1.0   # projection weights: with inputs up to 8, float16 scores stay finite
SLIDING, WINDOW = "mask.sliding_window", "mask.window"  # the variant and its constant
REACH = 17           # the longest sequence drawn to pass a declared window (beyond: the scale profile's)


def mask(data, shape: tuple, label: str) -> np.ndarray:
    """A boolean mask (True: hidden), none, a quarter or half of its entries hidden; shrinks to none."""
    density = data.draw(st.sampled_from((0, 1, 2)), label=f"{label} density")
    count = int(np.prod(shape))
    if density == 0 or count == 0:
        hidden = np.zeros(shape, dtype=bool)
    else:
        hidden = (raw_bytes(data, count, label) >= 256 - 64 * density).reshape(shape)
    if current_build_context().is_final:
        note(f"inputs.{label} (True: hidden) = {np.array2string(hidden.astype(int), separator=', ')}")
    return hidden


# --- drawing cases -----------------------------------------------------------------------------
def longest() -> int:
    """The longest sequence to draw: past a declared window where it is longer than the usual sizes."""
    window = declared(WINDOW)
    return MAX_SIZE if window is None else max(MAX_SIZE, min(int(window) + 1, REACH))


def drawn_window(data, kind, inputs: dict, positions: int) -> dict:
    """inputs with the window a subject that takes it is given (`window`, 1 to positions + 1), under
    mask.sliding_window where the subject declares none; else inputs as they are."""
    if SLIDING not in kind or declared(WINDOW) is not None:
        return inputs
    return {**inputs, "window": np.array(data.draw(st.integers(1, positions + 1), label="window"))}


def window(kind, inputs) -> int | None:
    """The window in force for this case: the one drawn, or the declared one; None without a sliding
    window, or where there is none to use (see windowless)."""
    if SLIDING not in kind:
        return None
    if "window" in inputs:
        return int(inputs["window"])
    found = declared(WINDOW)
    return None if found is None else int(found)


def windowless(kind, inputs) -> bool:
    """A sliding window with no window to check it with: only the diagnosis's alternatives for a subject
    that declares no sliding window (the default window, 4096, would be mask.causal at these sizes and
    a confirmed "variant" that says nothing). Its oracle gives None: the alternative is not tried."""
    return SLIDING in kind and window(kind, inputs) is None


def draw_attention(data, kind, masked=True, lacks=frozenset(), high=MAX_SIZE):
    B, n, m, d_k = size(data, "B"), size(data, "n", high=high), size(data, "m", high=high), size(data, "d_k")
    d_v, bound = d_k if "value_width" in lacks else size(data, "d_v"), magnitude(data)
    q_bound = past_overflow(data, bound * np.sqrt(d_k)) or bound  # |q·k| / √d_k ≤ q_bound · bound · √d_k
    params, inputs = case(data, {}, {"q": Shape((B, n, d_k), q_bound), "k": Shape((B, m, d_k), bound),
                                     "v": Shape((B, m, d_v), bound)})
    if masked:
        inputs["mask"] = np.zeros((B, n, m), bool) if "mask" in lacks else \
            mask(data, (B, 1, m), "mask") if "per_query_mask" in lacks else mask(data, (B, n, m), "mask")
    return params, inputs


def draw_causal(data, kind, lacks=frozenset()):
    params, inputs = draw_attention(data, kind, masked=False, lacks=lacks, high=longest())
    return params, drawn_window(data, kind, inputs, max(inputs["q"].shape[1], inputs["k"].shape[1]))


def mha_biases(h, d_k, d_model, bound) -> dict:
    """The projections' biases, one row per head (b_Q, b_K, b_V: h×d_k), and b_O (d_model)."""
    return {"b_Q": Shape((h, d_k), bound), "b_K": Shape((h, d_k), bound), "b_V": Shape((h, d_k), bound),
            "b_O": Shape((d_model,), bound)}


def draw_mha(data, kind, heads=None, lacks=frozenset()):
    """Cross-attention in general; half the draws are self-attention (key and value are the query),
    half of the rest have key and value widths equal to d_model (a packed projection can serve).
    What the subject lacks (MHA_CAPABILITIES) is not drawn."""
    B, h, d_k = size(data, "B"), heads or size(data, "h", high=MAX_HEADS), size(data, "d_k", high=MAX_HEAD_SIZE)
    d_model, n, bound = h * d_k, size(data, "n"), magnitude(data)
    self_attention = "cross_attention" in lacks or data.draw(st.booleans(), label="self-attention")
    if self_attention:
        m, d_kin, d_vin = n, d_model, d_model
    elif "kv_widths" in lacks or data.draw(st.booleans(), label="key and value widths = d_model"):
        m, d_kin, d_vin = size(data, "m"), d_model, d_model
    else:
        m, d_kin, d_vin = size(data, "m"), size(data, "d_kin"), size(data, "d_vin")
    params = {"W_Q": Shape((h, d_model, d_k), WEIGHT_BOUND), "W_K": Shape((h, d_kin, d_k), WEIGHT_BOUND),
              "W_V": Shape((h, d_vin, d_k), WEIGHT_BOUND), "W_O": Shape((h * d_k, d_model), WEIGHT_BOUND),
              **mha_biases(h, d_k, d_model, WEIGHT_BOUND)}
    # the scores' typical size per unit of query bound: random signs over d_model, d_kin and d_k terms
    # (for self-attention, per unit of the bound squared: the keys are the queries)
    extreme = past_overflow(data, (1 if self_attention else bound) * np.sqrt(d_model * d_kin * d_k) / 3)
    q_bound = bound if extreme is None else np.sqrt(extreme) if self_attention else extreme
    inputs = {"query": Shape((B, n, d_model), q_bound)}
    if not self_attention:
        inputs |= {"key": Shape((B, m, d_kin), bound), "value": Shape((B, m, d_vin), bound)}
    params, inputs = case(data, params, inputs)
    if self_attention:
        inputs["key"], inputs["value"] = inputs["query"].copy(), inputs["query"].copy()
    inputs["attn_mask"] = np.zeros((n, m), bool) if "attn_mask" in lacks else mask(data, (n, m), "attn_mask")
    inputs["key_padding_mask"] = np.zeros((B, m), bool) if "key_padding" in lacks else \
        mask(data, (B, m), "key_padding_mask")
    return params, inputs


MHA_CAPABILITIES = {
    "cross_attention": "keys and values other than the query not checked (self-attention only)",
    "kv_widths": "key and value widths other than d_model not checked",
    "attn_mask": "attention masks not checked",
    "key_padding": "key padding not checked",
}


def draw_seq2seq_attention(data, kind):
    B, n, m, d_h, bound = size(data, "B"), size(data, "n"), size(data, "m"), size(data, "d_h"), magnitude(data)
    s_bound = past_overflow(data, bound * np.sqrt(d_h)) or bound
    return case(data, {}, {"S": Shape((B, n, d_h), s_bound), "H": Shape((B, m, d_h), bound)})


def draw_pe(data, kind):
    """Embeddings x (B, n, d) with d even (the article's d_model: column pairs)."""
    B, n, d, bound = size(data, "B"), size(data, "n"), 2 * size(data, "pairs", high=4), magnitude(data)
    return case(data, {}, {"x": Shape((B, n, d), bound)})


# --- oracles: the spec's (spec/attention.py, spec/positional.py), under the subject's names ------
def named(found: dict, **names) -> dict:
    """The spec's outputs under the subject's names: named(found, out="O") is {"out": found["O"]}."""
    return {name: found[spec_name] for name, spec_name in names.items()}


def mha_hidden(inputs) -> np.ndarray:
    """The keys hidden from each query of a multi-head case (B, n, m): attn_mask or key padding."""
    return spec.hidden_keys(inputs["query"].shape[-2], inputs["key"].shape[-2], given=inputs["attn_mask"],
                            padding=inputs["key_padding_mask"])


def given_mask(inputs) -> np.ndarray:
    """attention's mask (B, n, m); a key padding mask (B, 1, m) broadcast over the queries."""
    return np.broadcast_to(inputs["mask"], inputs["q"].shape[:-1] + inputs["k"].shape[-2:-1]).copy()


def given_hidden(kind, inputs) -> np.ndarray:
    """attention's hidden keys (B, n, m): the given mask (spec.attention.hidden_keys)."""
    return spec.hidden_keys(inputs["q"].shape[-2], inputs["k"].shape[-2], given=given_mask(inputs))


def causal_hidden(kind, inputs) -> np.ndarray:
    """attention.causal's hidden keys (n, m): the later ones (lower right with mask.causal_lower_right),
    and those before the window with mask.sliding_window."""
    return spec.hidden_keys(inputs["q"].shape[-2], inputs["k"].shape[-2], causal=True,
                            lower_right="mask.causal_lower_right" in kind, window=window(kind, inputs))


def mha_hidden_keys(kind, inputs) -> np.ndarray:
    """mha's hidden keys with a head axis second (B, 1, n, m): attn_mask or key padding."""
    return mha_hidden(inputs)[:, None]


def attention_oracle(kind):
    eq = spec.UNSCALED if "attn.unscaled" in kind else spec.MASK_GIVEN

    def oracle(params, inputs):
        out, weights = spec.attention(eq, given_hidden(kind, inputs), Q=inputs["q"], K=inputs["k"], V=inputs["v"],
                                      B_mask=given_mask(inputs))
        return {"out": out, "weights": weights}
    return oracle


def causal_oracle(kind):
    eq = spec.causal_equation("mask.causal_lower_right" in kind, SLIDING in kind)

    def oracle(params, inputs):
        if windowless(kind, inputs):
            return None
        w = window(kind, inputs)
        with in_force({} if w is None else {WINDOW: w}):  # the window drawn for this case, or the declared one
            out, weights = spec.attention(eq, causal_hidden(kind, inputs), Q=inputs["q"], K=inputs["k"],
                                          V=inputs["v"])
        return {"out": out, "weights": weights}
    return oracle


def mha_oracle(kind):
    def oracle(params, inputs):
        found = spec.multi_head(params, inputs["query"], inputs["key"], inputs["value"], mha_hidden(inputs),
                                weights=True)
        return {**named(found, out="O", heads="Z_heads", weights="weights"), "mean_weights": found["weights"].mean(1)}
    return oracle


def seq2seq_attention_oracle(kind):
    return lambda params, inputs: named(spec.seq2seq_attention(inputs["S"], inputs["H"]), context="C_ctx",
                                        weights="alpha", scores="E")


def pe_oracle(kind):
    return lambda params, inputs: named(positional.encoding(inputs["x"], kind), out="X_P", P="P")


WEIGHT_BOUNDS = {"weights": (0.0, 1.0), "mean_weights": (0.0, 1.0)}
VALUE_WIDTH = "value widths other than d_k not checked"
KEY_PADDING_ONLY = ("key padding only: the mask comes as (B, 1, m), the keys hidden from every query of a "
                    "sequence; masks that differ between queries not checked")


COMPONENTS = headed_as_run([  # a failure headed by the E-id that ran (engine/ran.py)
    Component(name="attention", family="attention", eids=("self.attention", "mask.given"), required=("out",),
              draw=draw_attention, oracle=attention_oracle,
              output_eids={"out": "self.attention", "weights": "self.attention"},
              variants=("attn.unscaled",) + MASK_FORMS, mask_forms=MASK_FORMS, bounds=WEIGHT_BOUNDS,
              probabilities=("weights",), hidden_keys=given_hidden,
              capabilities={"mask": "masks not checked (every key visible)", "per_query_mask": KEY_PADDING_ONLY,
                            "value_width": VALUE_WIDTH},
              has_parameters=False, queries="q", keys=("k", "v"), masks=("mask",)),
    Component(name="attention.causal", family="attention", eids=("mask.causal",), required=("out",),
              draw=draw_causal, oracle=causal_oracle, output_eids={"out": "mask.causal", "weights": "mask.causal"},
              variants=("mask.causal_lower_right", SLIDING), bounds=WEIGHT_BOUNDS, probabilities=("weights",),
              hidden_keys=causal_hidden, capabilities={"value_width": VALUE_WIDTH}, constants=(WINDOW,),
              has_parameters=False, shared=("window",), queries="q", keys=("k", "v"), causal=True),
    Component(name="mha", family="attention", eids=("self.qkv", "mha.head", "mha.output", "mask.given",
                                                    "mask.key_padding"),
              required=("out",), draw=draw_mha, oracle=mha_oracle,
              output_eids={"out": "mha.output", "heads": "mha.head", "weights": "mha.head", "mean_weights": "mha.head"},
              variants=MASK_FORMS, mask_forms=MASK_FORMS, shared=("attn_mask",), bounds=WEIGHT_BOUNDS,
              probabilities=("weights", "mean_weights"), hidden_keys=mha_hidden_keys, capabilities=MHA_CAPABILITIES,
              queries="query", keys=("key", "value"), masks=("attn_mask", "key_padding_mask"), heads=True),
    Component(name="attn.seq2seq", family="attention", eids=("attn.score", "attn.weights", "attn.context"),
              required=("context",), draw=draw_seq2seq_attention, oracle=seq2seq_attention_oracle,
              output_eids={"context": "attn.context", "weights": "attn.weights", "scores": "attn.score"},
              bounds=WEIGHT_BOUNDS, probabilities=("weights",), has_parameters=False, queries="S", keys=("H",)),
    Component(name="pe", family="pe", eids=("pe.sin", "pe.cos", "pe.input"), required=("out",), draw=draw_pe,
              oracle=pe_oracle, output_eids={"out": "pe.input", "P": "pe.input"},
              variants=("pe.concat", "pe.scaled_input"), shared=("P",),
              replaces={"pe.concat": ("pe.sin", "pe.cos", "pe.input")}, bounds={"P": (-1.0, 1.0)},
              constants=("pe.base",), has_parameters=False, full_size=(1, 2048, 512)),
])
