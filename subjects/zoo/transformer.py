"""Transformer mutants (§4, layers, stacks, the model): each is the reference with one small bug."""
from __future__ import annotations

from functools import partial

import torch

from nlpspec.reference import transformer as ref
from nlpspec.reference.attention import add_positions, attention, multi_head

from ..protocol import Declaration
from ..reference import BUILDERS, bound, named, padding
from .attention import attend as attend_with
from .attention import backward_unmasked, naive_softmax, with_gradient_of
from .attention import multi_head as multi_head_with
from .mutant import mutant, zeroed


# --- the layers written as the reference's, with the pieces several mutants break as arguments ----
def layer_norm(x, gamma, beta, dim=-1, eps=ref.EPSILON, unbiased=False):
    """layernorm with the knobs a bug turns: the axis, ε, and the variance's divisor (n - 1 when
    unbiased; at n = 1 that is 0 / 0, a quiet nan)."""
    mean = x.mean(dim, keepdim=True)
    var = ((x - mean) ** 2).sum(dim, keepdim=True) / (x.shape[dim] - unbiased)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def one_pass_layer_norm(x, gamma, beta):
    """layernorm (E-id layernorm) with its variance in one pass, E[x²] - E[x]² in x's own dtype, clamped
    at 0 (Flax's use_fast_variance=True): it cancels where a row's mean is large against its spread."""
    mean = x.mean(-1, keepdim=True)
    var = torch.clamp((x * x).mean(-1, keepdim=True) - mean * mean, min=0)
    return gamma * (x - mean) / torch.sqrt(var + ref.EPSILON) + beta


def rms_norm(x, gamma, eps_inside=True, mean=True):
    """rmsnorm with the knobs a bug turns: ε under the root or added to it, the mean square or the sum
    of squares (an L2 norm: no 1/d)."""
    squares = (x * x).mean(-1, keepdim=True) if mean else (x * x).sum(-1, keepdim=True)
    root = torch.sqrt(squares + ref.RMS_EPSILON) if eps_inside else torch.sqrt(squares) + ref.RMS_EPSILON
    return gamma * x / root


def post_ln(x, fn, gamma, beta, norm):
    """The article's residual block: LN(x + fn(x))."""
    return norm(x + fn(x), gamma, beta)


def pre_ln(x, fn, gamma, beta, norm):
    """The pre-LN block (norm_first): x + fn(LN(x))."""
    return x + fn(norm(x, gamma, beta))


def feed_forward(p, ffn):
    return lambda t: ffn(t, p["W_1"], p["b_1"], p["W_2"], p["b_2"])


def encoder_layer(x, p, mask=None, norm=ref.layer_norm, ffn=ref.ffn, block=post_ln):
    """enc.attn, enc.ffn as the reference's, the LayerNorm, the FFN and the residual block as arguments."""
    z = block(x, lambda t: multi_head(t, t, t, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"], norm)
    return block(z, feed_forward(p, ffn), p["gamma_2"], p["beta_2"], norm)


def decoder_layer(y, memory, p, norm=ref.layer_norm, ffn=ref.ffn, block=post_ln, self_mask=ref.causal_mask,
                  attend=attention):
    """dec.self, dec.cross, dec.ffn as the reference's, and as arguments: the encoder layer's pieces, the
    self-attention's mask (self_mask(length, dtype, device)) and its attention."""
    mask = self_mask(y.shape[1], y.dtype, y.device)
    a = block(y, lambda t: multi_head_with(t, t, t, **p["self_attn"], mask=mask, attend=attend)[0], p["gamma_1"],
              p["beta_1"], norm)
    b = block(a, lambda t: multi_head(t, memory, memory, **p["cross_attn"])[0], p["gamma_2"], p["beta_2"], norm)
    return block(b, feed_forward(p, ffn), p["gamma_3"], p["beta_3"], norm)


def encoder_layers(layer):
    """An encoder.layer builder, as the reference adapter's, around a broken layer."""
    return lambda params: lambda x, key_padding_mask: layer(x, params, padding(key_padding_mask))


def decoder_layers(layer):
    return lambda params: lambda y, memory: layer(y, memory, params)


def decoder_stack(layer):
    """A decoder builder: a stack of a broken layer."""
    def build(params):
        def fn(y, memory):
            for p in params["layers"]:
                y = layer(y, memory, p)
            return y
        return fn
    return build


def in_layers(**pieces):
    """Both layers built with these broken pieces."""
    return {"encoder.layer": encoder_layers(partial(encoder_layer, **pieces)),
            "decoder.layer": decoder_layers(partial(decoder_layer, **pieces))}


def everywhere(component, piece, fn):
    """A broken piece used by its own component and inside both layers."""
    return {component: bound(fn), **in_layers(**{piece: fn})}


def ffn_without_relu(z, W_1, b_1, W_2, b_2):
    return (z @ W_1 + b_1) @ W_2 + b_2


def no_mask(length, dtype, device):
    return torch.zeros(length, length, dtype=dtype, device=device)


def mask_one_ahead(length, dtype, device):
    hidden = torch.ones(length, length, dtype=torch.bool, device=device).triu(2)
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill(hidden, float("-inf"))


def scaled_by_length(q, k, v, mask=None, causal=False):
    """Self-attention scores divided by √(sequence length) instead of √d_k."""
    weights = torch.softmax(q @ k.transpose(-1, -2) / k.shape[-2] ** 0.5 + (0 if mask is None else mask), dim=-1)
    return weights @ v, weights


# --- one-off bugs: the reference's lines with one changed -------------------------------------------
def encoder_without_ffn_residual(x, p, mask=None):
    z = ref.layer_norm(x + multi_head(x, x, x, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"])
    return ref.layer_norm(ref.ffn(z, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_2"], p["beta_2"])


def encoder_ffn_residual_twice(x, p, mask=None):
    """LN(2z + FFN(z)): the residual added twice (one `z +` too many); with the FFN silenced only ε
    tells LN(2z) from LN(z)."""
    z = ref.layer_norm(x + multi_head(x, x, x, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"])
    return ref.layer_norm(2 * z + ref.ffn(z, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_2"], p["beta_2"])


def decoder_without_self_residual(y, memory, p):
    causal = ref.causal_mask(y.shape[1], y.dtype, y.device)
    a = ref.layer_norm(multi_head(y, y, y, **p["self_attn"], mask=causal)[0], p["gamma_1"], p["beta_1"])
    b = ref.layer_norm(a + multi_head(a, memory, memory, **p["cross_attn"])[0], p["gamma_2"], p["beta_2"])
    return ref.layer_norm(b + ref.ffn(b, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_3"], p["beta_3"])


def decoder_cross_from_decoder(y, memory, p):
    """Cross-attention takes its keys and values from the decoder's own states."""
    causal = ref.causal_mask(y.shape[1], y.dtype, y.device)
    a = ref.layer_norm(y + multi_head(y, y, y, **p["self_attn"], mask=causal)[0], p["gamma_1"], p["beta_1"])
    b = ref.layer_norm(a + multi_head(a, a, a, **p["cross_attn"])[0], p["gamma_2"], p["beta_2"])
    return ref.layer_norm(b + ref.ffn(b, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_3"], p["beta_3"])


def decoder_cross_masked_causally(y, memory, p):
    """The decoder's causal mask reused for cross-attention (query i sees encoder positions j <= i)."""
    m, n = y.shape[1], memory.shape[1]
    hidden = torch.ones(m, n, dtype=torch.bool, device=y.device).triu(1)
    mask = torch.zeros(m, n, dtype=y.dtype, device=y.device).masked_fill(hidden, -torch.inf)
    return ref.decoder_layer(y, memory, p, memory_mask=mask)


def decoder_dropout_left_on(params):
    fn = BUILDERS["decoder.layer"](params)
    return lambda y, memory: torch.nn.functional.dropout(fn(y, memory), p=0.1, training=True)


def classifier_over_sequence(d, W_c, b_c):
    return torch.softmax(d @ W_c + b_c, dim=-2)


def classifier_softmax_overflows(d, W_c, b_c):
    """classifier with a softmax that does not subtract the row's maximum (E-id classifier)."""
    return naive_softmax(d @ W_c + b_c, dim=-1)


def encoder_reusing_first_layer(params):
    """Every layer of the stack runs with the first layer's parameters."""
    return BUILDERS["encoder"]({"layers": [params["layers"][0]] * len(params["layers"])})


# --- the model ------------------------------------------------------------------------------------
def transformer(model):
    """A transformer builder, as the reference adapter's, around a broken model."""
    def build(params):
        def fn(src, tgt, src_key_padding_mask):
            return model(src, tgt, params, padding(src_key_padding_mask))
        return named(fn, "out", "memory")
    return build


def model_without_shift(params):
    """The decoder reads the targets themselves: target i leaks into its own prediction."""
    fn = BUILDERS["transformer"](params)
    return lambda src, tgt, src_key_padding_mask: fn(src, torch.cat([tgt[:, 1:], tgt[:, -1:]], dim=1),
                                                     src_key_padding_mask)


def model_memory_padding_ignored(src, tgt, p, src_mask=None):
    """The source padding reaches the encoder but not cross-attention (nn.Transformer called
    without memory_key_padding_mask)."""
    _, memory = ref.model(src, tgt, p, src_mask)
    y, _ = add_positions(p["tgt_embedding"][ref.shift_right(tgt)])
    return ref.classifier(ref.decoder(y, memory, p["decoder"]["layers"]), p["W_c"], p["b_c"]), memory


def model_decoders_read_first_encoder(src, tgt, p, src_mask=None):
    _, memory = ref.model(src, tgt, p, src_mask)
    x, _ = add_positions(p["src_embedding"][src])
    first = ref.encoder_layer(x, p["encoder"]["layers"][0], src_mask)
    y, _ = add_positions(p["tgt_embedding"][ref.shift_right(tgt)])
    out = ref.decoder(y, first, p["decoder"]["layers"], src_mask)  # the first encoder's output
    return ref.classifier(out, p["W_c"], p["b_c"]), memory


def model_backward_unshifted(src, tgt, p, src_mask=None):
    """The right shift in the forward pass only: the backward reads the unshifted targets, so target
    i's embedding gets a gradient from its own prediction."""
    out, memory = ref.model(src, tgt, p, src_mask)
    leak = ref.classifier(ref.decoder(p["tgt_embedding"][tgt], memory, p["decoder"]["layers"], src_mask),
                          p["W_c"], p["b_c"])
    return with_gradient_of(out, leak), memory


def causal_self_attention(x, self_mask=ref.causal_mask, **p):
    """mha.causal as the reference's, the causal mask as an argument."""
    return multi_head(x, x, x, **p, mask=self_mask(x.shape[1], x.dtype, x.device))


def decoder_only_layer(x, p, self_mask=ref.causal_mask, block=post_ln, norm=ref.layer_norm):
    """decoder_only.layer as the reference's, the mask and the residual block as arguments."""
    a = block(x, lambda t: causal_self_attention(t, self_mask, **p["self_attn"])[0], p["gamma_1"], p["beta_1"], norm)
    return block(a, feed_forward(p, ref.ffn), p["gamma_2"], p["beta_2"], norm)


def causal_mha(self_mask):
    return lambda params: named(partial(causal_self_attention, self_mask=self_mask, **params), "out", "weights")


def decoder_only(**broken):
    return lambda params: lambda x: decoder_only_layer(x, params, **broken)


BACKWARD_UNMASKED = partial(decoder_layer, attend=backward_unmasked)
NAIVE_SOFTMAX = partial(attend_with, softmax=naive_softmax)  # its row's maximum not subtracted

MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("mha_causal_one_ahead", "a causal self-attention kernel leaking one position (i sees i + 1)",
           {"mha.causal": causal_mha(mask_one_ahead)}),
    mutant("decoder_only_unmasked", "a GPT-style block whose self-attention has no causal mask",
           {"decoder_only.layer": decoder_only(self_mask=no_mask)}),
    mutant("decoder_only_pre_ln_declared_post_ln", "a pre-LN GPT block declared as the article's post-LN",
           {"decoder_only.layer": decoder_only(block=pre_ln)}),
    mutant("dec_self_attention_unmasked", "decoder self-attention without the causal mask",
           {"decoder.layer": decoder_layers(partial(decoder_layer, self_mask=no_mask))}),
    mutant("dec_causal_one_ahead", "decoder causal mask lets position i see i + 1",
           {"decoder.layer": decoder_layers(partial(decoder_layer, self_mask=mask_one_ahead))}),
    mutant("dec_cross_from_decoder", "cross-attention takes keys and values from the decoder, not the encoder",
           {"decoder.layer": decoder_layers(decoder_cross_from_decoder)}),
    mutant("enc_ffn_residual_dropped", "the encoder's FFN block without its residual",
           {"encoder.layer": encoder_layers(encoder_without_ffn_residual)}),
    mutant("enc_ffn_residual_twice", "the encoder's FFN block adds its residual twice",
           {"encoder.layer": encoder_layers(encoder_ffn_residual_twice)}),
    mutant("dec_self_residual_dropped", "the decoder's self-attention block without its residual",
           {"decoder.layer": decoder_layers(decoder_without_self_residual)}),
    mutant("pre_ln_declared_post_ln", "pre-LN layers declared as the article's post-LN", in_layers(block=pre_ln)),
    mutant("ln_over_sequence", "LayerNorm over the sequence axis instead of the features",
           everywhere("layernorm", "norm", partial(layer_norm, dim=-2))),
    mutant("ln_without_epsilon", "LayerNorm without ε", everywhere("layernorm", "norm", partial(layer_norm, eps=0.0))),
    mutant("ln_epsilon_not_the_declared", "declares BERT's ε = 1e-12, computes with PyTorch's 1e-5",
           {"layernorm": BUILDERS["layernorm"]},
           {"layernorm": Declaration(constants={"layernorm.epsilon": 1e-12})}),
    mutant("ln_unbiased_variance", "LayerNorm with the unbiased (n - 1) variance",
           everywhere("layernorm", "norm", partial(layer_norm, unbiased=True))),
    mutant("rms_epsilon_outside_root", "RMSNorm with ε added to the root, x / (√mean(x²) + ε)",
           {"rmsnorm": bound(partial(rms_norm, eps_inside=False))}),
    mutant("rms_l2_norm", "RMSNorm dividing by the L2 norm (no 1/d), not the root mean square",
           {"rmsnorm": bound(partial(rms_norm, mean=False))}),
    mutant("ffn_without_relu", "FFN without its ReLU", everywhere("ffn", "ffn", ffn_without_relu)),
    mutant("dec_dropout_left_on", "dropout left on in eval", {"decoder.layer": decoder_dropout_left_on}),
    mutant("dec_cross_masked_causally", "the causal mask applied to cross-attention too",
           {"decoder.layer": decoder_layers(decoder_cross_masked_causally)}),
    mutant("enc_key_padding_ignored", "the encoder layer ignores its key padding mask",
           {"encoder.layer": zeroed("encoder.layer", "key_padding_mask")}),
    mutant("classifier_softmax_over_sequence", "classifier softmax over the sequence axis",
           {"classifier": bound(classifier_over_sequence)}),
    mutant("classifier_softmax_overflows", "classifier softmax without subtracting the row's maximum: exp overflows",
           {"classifier": bound(classifier_softmax_overflows)}),
    mutant("dec_softmax_overflows", "decoder self-attention's softmax without subtracting the row's maximum",
           {"decoder.layer": decoder_layers(partial(decoder_layer, attend=NAIVE_SOFTMAX))}),
    mutant("ln_squares_overflow", "LayerNorm's squared deviations summed in float16: past 256 they overflow, "
           "the variance is inf and the output β", {"layernorm": bound(layer_norm)}, dtype=torch.float16),
    mutant("ln_one_pass_variance", "LayerNorm's variance as E[x²] - E[x]² in the run's dtype (Flax's fast "
           "variance): it cancels where a row's mean is large against its spread",
           {"layernorm": bound(one_pass_layer_norm)}, dtype=torch.float32),
    mutant("enc_stack_reuses_first_layer", "every encoder layer runs with the first layer's weights",
           {"encoder": encoder_reusing_first_layer}),
    mutant("dec_scaled_by_length", "decoder self-attention scaled by √(sequence length), not √d_k",
           {"decoder": decoder_stack(partial(decoder_layer, attend=scaled_by_length))}),
    mutant("dec_backward_unmasked", "decoder self-attention masked in the forward pass only: gradients reach "
           "later positions", {"decoder.layer": decoder_layers(BACKWARD_UNMASKED),
                               "decoder": decoder_stack(BACKWARD_UNMASKED)}),
    mutant("model_backward_unshifted", "the right shift in the forward pass only: a target's embedding gets a "
           "gradient from its own prediction", {"transformer": transformer(model_backward_unshifted)}),
    mutant("model_right_shift_missing", "no right shift: the target at i leaks into its own prediction",
           {"transformer": model_without_shift}),
    mutant("model_decoders_read_first_encoder", "every decoder reads the first encoder's output, not the last",
           {"transformer": transformer(model_decoders_read_first_encoder)}),
    mutant("model_memory_padding_ignored", "cross-attention ignores the source's key padding (no "
           "memory_key_padding_mask)", {"transformer": transformer(model_memory_padding_ignored)}),
)}
