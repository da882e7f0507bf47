"""Transformer mutants (§4, layers): each is the reference with one small bug."""
from __future__ import annotations

from functools import partial

import torch

from reference import transformer as ref

from .mutant import mutant

LAYERS = ("encoder.layer", "decoder.layer")


def everywhere(norm):
    """A broken LayerNorm used by the layernorm component and inside every layer."""
    return {"layer_norm": norm, "encoder_layer": partial(ref.encoder_layer, norm=norm),
            "decoder_layer": partial(ref.decoder_layer, norm=norm)}


def ln_over_sequence(x, gamma, beta, eps=ref.EPSILON):
    mean = x.mean(-2, keepdim=True)
    var = ((x - mean) ** 2).mean(-2, keepdim=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def ln_unbiased(x, gamma, beta, eps=ref.EPSILON):
    return gamma * (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True, correction=1) + eps) + beta


def no_mask(length, dtype, device):
    return torch.zeros(length, length, dtype=dtype, device=device)


def mask_one_ahead(length, dtype, device):
    hidden = torch.ones(length, length, dtype=torch.bool, device=device).triu(2)
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill(hidden, float("-inf"))


def encoder_without_ffn_residual(x, p, mask=None, **kw):
    z = ref.sublayer(x, lambda t: ref.multi_head(t, t, t, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"])
    return ref.layer_norm(ref.ffn(z, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_2"], p["beta_2"])


def decoder_without_self_residual(y, memory, p, **kw):
    def block(x, fn, gamma, beta, pre_ln=False, norm=ref.layer_norm):
        return norm(fn(x), gamma, beta) if x is y else ref.sublayer(x, fn, gamma, beta, pre_ln, norm)
    return ref.decoder_layer(y, memory, p, block=block)


def decoder_dropout_left_on(y, memory, p, **kw):
    return torch.nn.functional.dropout(ref.decoder_layer(y, memory, p), p=0.1, training=True)


def decoder_cross_masked_causally(y, memory, p, **kw):
    """The decoder's causal mask reused for cross-attention (query i sees encoder positions j <= i)."""
    m, n = y.shape[1], memory.shape[1]
    hidden = torch.ones(m, n, dtype=torch.bool, device=y.device).triu(1)
    mask = torch.zeros(m, n, dtype=y.dtype, device=y.device).masked_fill(hidden, float("-inf"))

    def block(x, fn, gamma, beta, pre_ln=False, norm=ref.layer_norm):
        if getattr(block, "calls", 0) == 1:  # the second block: cross-attention, with the mask
            fn = (lambda t: ref.multi_head(t, memory, memory, **p["cross_attn"], mask=mask)[0])
        block.calls = getattr(block, "calls", 0) + 1
        return ref.sublayer(x, fn, gamma, beta, pre_ln, norm)
    return ref.decoder_layer(y, memory, p, block=block)


def encoder_padding_ignored(x, p, mask=None, **kw):
    return ref.encoder_layer(x, p, mask=None)


def classifier_over_sequence(d, W_c, b_c):
    return torch.softmax(d @ W_c + b_c, dim=-2)


MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("dec_self_attention_unmasked", "decoder self-attention without the causal mask", ("decoder.layer",),
           decoder_layer=partial(ref.decoder_layer, self_mask=no_mask)),
    mutant("dec_causal_one_ahead", "decoder causal mask lets position i see i + 1", ("decoder.layer",),
           decoder_layer=partial(ref.decoder_layer, self_mask=mask_one_ahead)),
    mutant("dec_cross_from_decoder", "cross-attention takes keys and values from the decoder, not the encoder",
           ("decoder.layer",), decoder_layer=partial(ref.decoder_layer, cross_source=lambda a, memory: a)),
    mutant("enc_ffn_residual_dropped", "the encoder's FFN block without its residual", ("encoder.layer",),
           encoder_layer=encoder_without_ffn_residual),
    mutant("dec_self_residual_dropped", "the decoder's self-attention block without its residual",
           ("decoder.layer",), decoder_layer=decoder_without_self_residual),
    mutant("pre_ln_declared_post_ln", "pre-LN layers declared as the article's post-LN", LAYERS,
           encoder_layer=partial(ref.encoder_layer, pre_ln=True), decoder_layer=partial(ref.decoder_layer, pre_ln=True)),
    mutant("ln_over_sequence", "LayerNorm over the sequence axis instead of the features", ("layernorm",) + LAYERS,
           **everywhere(ln_over_sequence)),
    mutant("ln_without_epsilon", "LayerNorm without ε", ("layernorm",) + LAYERS,
           **everywhere(partial(ref.layer_norm, eps=0.0))),
    mutant("ln_unbiased_variance", "LayerNorm with the unbiased (n - 1) variance", ("layernorm",) + LAYERS,
           **everywhere(ln_unbiased)),
    mutant("ffn_without_relu", "FFN without its ReLU", ("ffn",) + LAYERS,
           ffn=partial(ref.ffn, activation=lambda a: a),
           encoder_layer=partial(ref.encoder_layer, activation=lambda a: a),
           decoder_layer=partial(ref.decoder_layer, activation=lambda a: a)),
    mutant("dec_dropout_left_on", "dropout left on in eval", ("decoder.layer",), decoder_layer=decoder_dropout_left_on),
    mutant("dec_cross_masked_causally", "the causal mask applied to cross-attention too", ("decoder.layer",),
           decoder_layer=decoder_cross_masked_causally),
    mutant("enc_key_padding_ignored", "the encoder layer ignores its key padding mask", ("encoder.layer",),
           encoder_layer=encoder_padding_ignored),
    mutant("classifier_softmax_over_sequence", "classifier softmax over the sequence axis", ("classifier",),
           classifier=classifier_over_sequence),
)}
