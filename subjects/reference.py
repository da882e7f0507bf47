"""The built-in subject "reference": nlpspec's own plain-PyTorch implementation (`reference/`).

A thin adapter: one builder per component, binding the spec-named params to a function of
`reference` and naming its results. The recurrent builders read the cell off the params' names
(W_hn: the reset-after GRU; W_h: the article's). attention.causal and mha.causal run twice, as the
option `mask`: "causal" (the article's mask.causal) and "sliding_window" (mask.sliding_window, the
window taken as an input, so the suite draws it).
"""
from __future__ import annotations

from functools import partial

from nlpspec.reference import gru_cell, gru_cell_reset_after, lstm_cell, rnn_cell, rnn_output, seq2seq, stacked
from nlpspec.reference.attention import add_positions, attention, multi_head, seq2seq_attention
from nlpspec.reference.transformer import (causal_self_attention, classifier, decoder, decoder_layer, decoder_only_layer,
                                           encoder, encoder_layer, ffn, layer_norm, model, rms_norm)

from .protocol import Subject

VERSION = "0.1.0"


def named(fn, *names):
    """fn, its tuple of results returned as a dict of the spec's names."""
    return lambda *args, **inputs: dict(zip(names, fn(*args, **inputs)))


def bound(fn):
    """The builder that binds the params to fn as keywords."""
    return lambda params: partial(fn, **params)


def padding(key_padding_mask):
    """The additive key padding (B, m) as a mask over the scores (B, 1, 1, m)."""
    return key_padding_mask[:, None, None, :]


def cell_of(params):
    """The reference cell these params are for."""
    if "W_hh" in params:
        return rnn_cell
    if "W_f" in params:
        return lstm_cell
    return gru_cell_reset_after if "W_hn" in params else gru_cell


def state(h_prev, C_prev):
    return {"h": h_prev} if C_prev is None else {"h": h_prev, "C": C_prev}


def cell(params):
    return partial(cell_of(params), **params)


def layers(params):
    def fn(x, h_prev, C_prev=None):
        out, final = stacked(cell_of(params["layers"][0][0]), params["layers"], x, state(h_prev, C_prev))
        return {"out": out, **final}
    return fn


def layers_padded(params):
    def fn(x, lengths, h_prev, C_prev=None):
        out, final = stacked(cell_of(params["layers"][0][0]), params["layers"], x, state(h_prev, C_prev), lengths)
        return {"out": out, **final}
    return fn


def encoder_decoder(params):
    def fn(x, y_prev, h_prev, C_prev=None):
        h, y = seq2seq(cell_of(params["encoder"]), params["encoder"], params["decoder"], params["output"], x, y_prev,
                       state(h_prev, C_prev))
        return {"h": h, "y": y}
    return fn


def mha(params):
    def fn(query, key, value, attn_mask, key_padding_mask):
        out, weights = multi_head(query, key, value, **params, mask=attn_mask + padding(key_padding_mask))
        return {"out": out, "weights": weights}
    return fn


def windowed(fn):
    """The builder of a causal component run as option mask: "causal" takes no window; "sliding_window"
    takes the window as an input (mask.sliding_window, the window drawn by the suite)."""
    def build(params, mask="causal"):
        causal = fn(params)
        if mask == "causal":
            return causal
        return lambda window, **inputs: causal(**inputs, window=int(window))
    return build


SLIDING = {"mask": ["causal", "sliding_window"]}


def sliding(options) -> str | None:
    """The variant of a windowed component's option set."""
    return "mask.sliding_window" if options.get("mask") == "sliding_window" else None


def transformer(params):
    def fn(src, tgt, src_key_padding_mask):
        out, memory = model(src, tgt, params, src_mask=padding(src_key_padding_mask))
        return {"out": out, "memory": memory}
    return fn


BUILDERS = {
    **{f"{kind}.cell": cell for kind in ("rnn", "lstm", "gru")},
    **{f"{kind}.layers": layers for kind in ("rnn", "lstm", "gru")},
    **{f"{kind}.layers_padded": layers_padded for kind in ("rnn", "lstm", "gru")},
    **{f"{kind}.seq2seq": encoder_decoder for kind in ("rnn", "lstm", "gru")},
    "rnn.output": bound(rnn_output),
    "attention": lambda params: named(attention, "out", "weights"),
    "attention.causal": windowed(lambda params: named(partial(attention, causal=True), "out", "weights")),
    "mha": mha,
    "attn.seq2seq": lambda params: named(seq2seq_attention, "context", "weights", "scores"),
    "pe": lambda params: named(add_positions, "out", "P"),
    "layernorm": bound(layer_norm),
    "rmsnorm": bound(rms_norm),
    "ffn": bound(ffn),
    "encoder.layer": lambda params: lambda x, key_padding_mask: encoder_layer(x, params, padding(key_padding_mask)),
    "decoder.layer": lambda params: lambda y, memory: decoder_layer(y, memory, params),
    "encoder": lambda params: lambda x, key_padding_mask: encoder(x, params["layers"], padding(key_padding_mask)),
    "decoder": lambda params: lambda y, memory: decoder(y, memory, params["layers"]),
    "mha.causal": windowed(lambda params: named(partial(causal_self_attention, **params), "out", "weights")),
    "decoder_only.layer": lambda params: lambda x: decoder_only_layer(x, params),
    "classifier": bound(classifier),
    "transformer": transformer,
}

VARIANTS = {"attention.causal": sliding, "mha.causal": sliding}
OPTIONS = {"attention.causal": SLIDING, "mha.causal": SLIDING}

SUBJECT = Subject(name="reference", version=VERSION, builders=BUILDERS, variants=VARIANTS, options=OPTIONS)
