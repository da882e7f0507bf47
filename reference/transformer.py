"""§4 The Transformer, written as the article's equations: post-LN layers, no final norm.

Batch first, one row per position, weights acting on the right (z @ W_1). A layer's parameters:
the multi-head weights of each attention ({W_Q, W_K, W_V, W_O}, per head, as reference.attention
takes them), gamma_k / beta_k of its k-th LayerNorm, and W_1, b_1, W_2, b_2 of its FFN. A mask is
additive (0, or -inf where a key is hidden) and broadcasts against the scores (B, h, n, m).
"""
import torch

from .attention import add_positions, causal_hidden, multi_head

EPSILON = 1e-5  # the article's ε (torch.nn.LayerNorm's default)


def layer_norm(x, gamma, beta):
    """layernorm: over the features, biased variance; a half-precision x is normalised in float32 (its
    squares overflow past |x| = 256 in float16), as torch's own LayerNorm does."""
    wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    mean = wide.mean(-1, keepdim=True)
    var = ((wide - mean) ** 2).mean(-1, keepdim=True)
    return (gamma * ((wide - mean) / torch.sqrt(var + EPSILON)).to(x.dtype) + beta)


RMS_EPSILON = 1e-6  # RMSNorm's ε (LLaMA's, T5's, Qwen's); RMSNorm is an extension, not in the article


def rms_norm(x, gamma):
    """rmsnorm: x / √(mean(x²) + ε) ⊙ γ over the features, no centring, no β; a half-precision x is
    normalised in float32, as layer_norm."""
    wide = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return gamma * (wide / torch.sqrt((wide * wide).mean(-1, keepdim=True) + RMS_EPSILON)).to(x.dtype)


def ffn(z, W_1, b_1, W_2, b_2):
    """ffn: ReLU(z W_1 + b_1) W_2 + b_2."""
    return torch.relu(z @ W_1 + b_1) @ W_2 + b_2


def causal_mask(length, dtype, device, window=None):
    """mask.causal for a square decoder: -inf above the diagonal (and, with a window w, at and below
    the w-th diagonal under it: mask.sliding_window)."""
    hidden = causal_hidden(length, length, device, window)
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill(hidden, float("-inf"))


def encoder_layer(x, p, mask=None):
    """enc.attn, enc.ffn: Z = LN(X + MultiHead(X, X, X)), E = LN(Z + FFN(Z)); mask: the key padding (B, 1, 1, n)."""
    z = layer_norm(x + multi_head(x, x, x, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"])
    return layer_norm(z + ffn(z, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_2"], p["beta_2"])


def decoder_layer(y, memory, p, memory_mask=None):
    """dec.self, dec.cross, dec.ffn: causal self-attention, cross-attention to memory, FFN, each
    LN(x + sublayer(x)); memory_mask: the source's key padding (B, 1, 1, n), for cross-attention."""
    causal = causal_mask(y.shape[1], y.dtype, y.device)
    a = layer_norm(y + multi_head(y, y, y, **p["self_attn"], mask=causal)[0], p["gamma_1"], p["beta_1"])
    b = layer_norm(a + multi_head(a, memory, memory, **p["cross_attn"], mask=memory_mask)[0], p["gamma_2"], p["beta_2"])
    return layer_norm(b + ffn(b, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_3"], p["beta_3"])


def causal_self_attention(x, window=None, **p):
    """Masked multi-head self-attention on one sequence (mha.causal; mask.sliding_window with a
    window): (out, per-head weights)."""
    return multi_head(x, x, x, **p, mask=causal_mask(x.shape[1], x.dtype, x.device, window))


def decoder_only_layer(x, p):
    """A decoder-only (GPT-style) layer, post-LN: A = LN_1(X + CausalSelfAttention(X)), then
    LN_2(A + FFN(A)); no cross-attention."""
    a = layer_norm(x + causal_self_attention(x, **p["self_attn"])[0], p["gamma_1"], p["beta_1"])
    return layer_norm(a + ffn(a, p["W_1"], p["b_1"], p["W_2"], p["b_2"]), p["gamma_2"], p["beta_2"])


def encoder(x, layers, mask=None):
    """transformer.encoder: N encoder layers in sequence."""
    for p in layers:
        x = encoder_layer(x, p, mask)
    return x


def decoder(y, memory, layers, memory_mask=None):
    """transformer.decoder: N decoder layers in sequence, each attending to the same memory (the last
    encoder's output)."""
    for p in layers:
        y = decoder_layer(y, memory, p, memory_mask)
    return y


def classifier(d, W_c, b_c):
    """classifier: softmax(D W + b) over the vocabulary."""
    return torch.softmax(d @ W_c + b_c, dim=-1)


def shift_right(tgt):
    """pe.shift_right: the targets behind ⟨bos⟩ = token 0, the last one dropped."""
    return torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)


def model(src, tgt, p, src_mask=None):
    """transformer.model: token ids to next-token probabilities (pe.input, pe.shift_right);
    src_mask: the source's key padding (B, 1, 1, n), for the encoder and cross-attention.
    Returns (probabilities, memory)."""
    x, _ = add_positions(p["src_embedding"][src])
    memory = encoder(x, p["encoder"]["layers"], src_mask)
    y, _ = add_positions(p["tgt_embedding"][shift_right(tgt)])
    out = decoder(y, memory, p["decoder"]["layers"], src_mask)
    return classifier(out, p["W_c"], p["b_c"]), memory
