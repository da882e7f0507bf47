"""The built-in subject "reference": nlpspec's own plain-PyTorch implementation (`reference/`).

A thin adapter: each builder binds the spec-named params to a function of `reference`. The gru
builders read the variant off the keys (W_h: the article's cell; W_hn: gru.reset_after).
"""
from __future__ import annotations

from nlpspec.reference import (gru_cell, gru_cell_reset_after, lstm_cell, rnn_cell, rnn_output, seq2seq,
                       stacked)
from nlpspec.reference import attention as ref_attention
from nlpspec.reference import transformer as ref_transformer

from .base import Subject

VERSION = "0.1.0"


def _gru(params):
    """The GRU cell these params are for: reset-after when W_hn is present, else the article's."""
    return gru_cell_reset_after if "W_hn" in params else gru_cell


CELLS = {"rnn": lambda p: rnn_cell, "lstm": lambda p: lstm_cell, "gru": _gru}


def _cell(kind, cells=CELLS):
    def build(params):
        cell = cells[kind](params)

        def fn(x, h_prev, C_prev=None):
            state = {"h_prev": h_prev} if C_prev is None else {"h_prev": h_prev, "C_prev": C_prev}
            return cell(x, **state, **params)
        return fn
    return build


def _output(params):
    return lambda h: {"y": rnn_output(h, **params)}


def _layers(kind, cells=CELLS, stacked=stacked):
    def build(params):
        cell = cells[kind](params["layers"][0][0])

        def fn(x, h_prev, C_prev=None):
            state = {"h": h_prev} if C_prev is None else {"h": h_prev, "C": C_prev}
            out, final = stacked(cell, params["layers"], x, state)
            return {"out": out, **final}
        return fn
    return build


def _seq2seq(kind, cells=CELLS, seq2seq=seq2seq):
    def build(params):
        cell = cells[kind](params["encoder"])

        def fn(x, y_prev, h_prev, C_prev=None):
            state = {"h": h_prev} if C_prev is None else {"h": h_prev, "C": C_prev}
            h, y = seq2seq(cell, params["encoder"], params["decoder"], params["output"], x, y_prev, state)
            return {"h": h, "y": y}
        return fn
    return build


def _attention(attention):
    def build(params):
        def fn(q, k, v, mask):
            out, weights = attention(q, k, v, mask)
            return {"out": out, "weights": weights}
        return fn
    return build


def _causal(attention):
    def build(params):
        def fn(q, k, v):
            out, weights = attention(q, k, v, causal=True)
            return {"out": out, "weights": weights}
        return fn
    return build


def _mha(multi_head, mha_mask):
    def build(params):
        def fn(query, key, value, attn_mask, key_padding_mask):
            mask = mha_mask(attn_mask, key_padding_mask)
            out, weights = multi_head(query, key, value, **params, mask=mask)
            return {"out": out, "weights": weights}
        return fn
    return build


def _seq2seq_attention(seq2seq_attention):
    def build(params):
        def fn(S, H):
            context, weights, scores = seq2seq_attention(S, H)
            return {"context": context, "weights": weights, "scores": scores}
        return fn
    return build


def _pe(add_positions):
    def build(params):
        def fn(x):
            out, P = add_positions(x)
            return {"out": out, "P": P}
        return fn
    return build


def _layernorm(layer_norm):
    def build(params):
        return lambda x: layer_norm(x, params["gamma"], params["beta"])
    return build


def _ffn(ffn):
    def build(params):
        return lambda z: ffn(z, **params)
    return build


def _encoder_layer(encoder_layer):
    def build(params):
        def fn(x, key_padding_mask):
            return encoder_layer(x, params, mask=key_padding_mask[:, None, None, :])
        return fn
    return build


def _decoder_layer(decoder_layer):
    def build(params):
        return lambda y, memory: decoder_layer(y, memory, params)
    return build


def _encoder(encoder, encoder_layer):
    def build(params):
        def fn(x, key_padding_mask):
            return encoder(x, params["layers"], mask=key_padding_mask[:, None, None, :], layer=encoder_layer)
        return fn
    return build


def _decoder(decoder_layer):
    def build(params):
        return lambda y, memory: ref_transformer.decoder(y, memory, params["layers"], layer=decoder_layer)
    return build


def _model(model):
    def build(params):
        def fn(src, tgt, src_key_padding_mask):
            out, memory = model(src, tgt, params, src_mask=src_key_padding_mask[:, None, None, :])
            return {"out": out, "memory": memory}
        return fn
    return build


def _classifier(classifier):
    def build(params):
        return lambda d: classifier(d, params["W_c"], params["b_c"])
    return build


def mha_mask(attn_mask, key_padding_mask):
    """One additive mask (B, 1, n, m) for every head: the attention mask plus the key padding."""
    return attn_mask + key_padding_mask[:, None, None, :]


ATTENTION = {"attention": ref_attention.attention, "multi_head": ref_attention.multi_head, "mha_mask": mha_mask,
             "seq2seq_attention": ref_attention.seq2seq_attention, "add_positions": ref_attention.add_positions,
             "encoder_layer": ref_transformer.encoder_layer, "decoder_layer": ref_transformer.decoder_layer,
             "layer_norm": ref_transformer.layer_norm, "ffn": ref_transformer.ffn, "classifier": ref_transformer.classifier,
             "model": ref_transformer.model, "encoder": ref_transformer.encoder}


def builders(cells=CELLS, output=_output, stacked=stacked, seq2seq=seq2seq, **attention):
    """Every component's builder, from the given cells, architecture and attention functions.

    The defaults are the reference; the mutant zoo (subjects/zoo) swaps one piece for a broken one
    (the attention pieces are named as in ATTENTION).
    """
    pieces = {**ATTENTION, **attention}
    return {
        "attention": _attention(pieces["attention"]),
        "attention.causal": _causal(pieces["attention"]),
        "mha": _mha(pieces["multi_head"], pieces["mha_mask"]),
        "attn.seq2seq": _seq2seq_attention(pieces["seq2seq_attention"]),
        "pe": _pe(pieces["add_positions"]),
        "layernorm": _layernorm(pieces["layer_norm"]),
        "ffn": _ffn(pieces["ffn"]),
        "encoder.layer": _encoder_layer(pieces["encoder_layer"]),
        "decoder.layer": _decoder_layer(pieces["decoder_layer"]),
        "classifier": _classifier(pieces["classifier"]),
        "encoder": _encoder(pieces["encoder"], pieces["encoder_layer"]),
        "decoder": _decoder(pieces["decoder_layer"]),
        "transformer": _model(pieces["model"]),
        "rnn.output": output,
        **{f"{kind}.cell": _cell(kind, cells) for kind in cells},
        **{f"{kind}.layers": _layers(kind, cells, stacked) for kind in cells},
        **{f"{kind}.seq2seq": _seq2seq(kind, cells, seq2seq) for kind in cells},
    }


SUBJECT = Subject(name="reference", version=VERSION, builders=builders())
