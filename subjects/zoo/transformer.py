"""Transformer mutants (§4, layers): each is the reference with one small bug."""
from __future__ import annotations

from functools import partial

import torch

from nlpspec.reference import transformer as ref

from .attention import backward_unmasked, with_gradient_of
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


def encoder_ffn_residual_twice(x, p, mask=None, **kw):
    """LN(2z + FFN(z)): the residual added twice (one `z +` too many); with the FFN silenced only ε
    tells LN(2z) from LN(z)."""
    z = ref.sublayer(x, lambda t: ref.multi_head(t, t, t, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"])
    return ref.layer_norm(2 * z + ref.ffn(z, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_2"], p["beta_2"])


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
    mutant("enc_ffn_residual_twice", "the encoder's FFN block adds its residual twice", ("encoder.layer",),
           encoder_layer=encoder_ffn_residual_twice),
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


def model_without_shift(src, tgt, p, src_mask=None):
    """The decoder reads the targets themselves: target i leaks into its own prediction."""
    return ref.model(src, torch.cat([tgt[:, 1:], tgt[:, -1:]], dim=1), p, src_mask)


def model_memory_padding_ignored(src, tgt, p, src_mask=None):
    """The source padding reaches the encoder but not cross-attention (nn.Transformer called
    without memory_key_padding_mask)."""
    _, memory = ref.model(src, tgt, p, src_mask)
    shifted = torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)
    y = p["tgt_embedding"][shifted]
    y = y + ref.positions(y.shape[1], y.shape[2], y.dtype, y.device)
    return ref.classifier(ref.decoder(y, memory, p["decoder"]["layers"]), p["W_c"], p["b_c"]), memory


def model_decoders_read_first_encoder(src, tgt, p, src_mask=None):
    x = p["src_embedding"][src]
    x = x + ref.positions(x.shape[1], x.shape[2], x.dtype, x.device)
    first = ref.encoder_layer(x, p["encoder"]["layers"][0], mask=src_mask)
    memory = ref.encoder(first, p["encoder"]["layers"][1:], mask=src_mask)
    shifted = torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)
    y = p["tgt_embedding"][shifted]
    y = y + ref.positions(y.shape[1], y.shape[2], y.dtype, y.device)
    out = ref.decoder(y, first, p["decoder"]["layers"], memory_mask=src_mask)  # the first encoder's output
    return ref.classifier(out, p["W_c"], p["b_c"]), memory


def model_backward_unshifted(src, tgt, p, src_mask=None):
    """The right shift in the forward pass only: the backward reads the unshifted targets, so target
    i's embedding gets a gradient from its own prediction."""
    out, memory = ref.model(src, tgt, p, src_mask)
    leak = ref.classifier(ref.decoder(p["tgt_embedding"][tgt], memory, p["decoder"]["layers"], memory_mask=src_mask),
                          p["W_c"], p["b_c"])
    return with_gradient_of(out, leak), memory


def scaled_by_length(q, k, v, mask=None, causal=False):
    """Self-attention scores divided by √(sequence length) instead of √d_k."""
    weights = torch.softmax(q @ k.transpose(-1, -2) / k.shape[-2] ** 0.5 + (0 if mask is None else mask), dim=-1)
    return weights @ v, weights


def encoder_reusing_first_layer(x, layers, mask=None, layer=ref.encoder_layer):
    """Every layer of the stack runs with the first layer's parameters."""
    return ref.encoder(x, [layers[0]] * len(layers), mask, layer)


MUTANTS |= {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("enc_stack_reuses_first_layer", "every encoder layer runs with the first layer's weights", ("encoder",),
           encoder=encoder_reusing_first_layer),
    mutant("dec_scaled_by_length", "decoder self-attention scaled by √(sequence length), not √d_k", ("decoder",),
           decoder_layer=partial(ref.decoder_layer, attend=scaled_by_length)),
    mutant("dec_backward_unmasked", "decoder self-attention masked in the forward pass only: gradients reach "
           "later positions", ("decoder.layer", "decoder"), decoder_layer=partial(ref.decoder_layer,
                                                                                  attend=backward_unmasked)),
    mutant("model_backward_unshifted", "the right shift in the forward pass only: a target's embedding gets a "
           "gradient from its own prediction", ("transformer",), model=model_backward_unshifted),
    mutant("model_right_shift_missing", "no right shift: the target at i leaks into its own prediction",
           ("transformer",), model=model_without_shift),
    mutant("model_decoders_read_first_encoder", "every decoder reads the first encoder's output, not the last",
           ("transformer",), model=model_decoders_read_first_encoder),
    mutant("model_memory_padding_ignored", "cross-attention ignores the source's key padding (no "
           "memory_key_padding_mask)", ("transformer",), model=model_memory_padding_ignored),
)}
