"""§4 The Transformer's layers, written as the article's equations (post-LN by default).

Batch first, one row per position, weights acting on the right (z @ W_1). A layer's parameters:
the multi-head weights of each attention ({W_Q, W_K, W_V, W_O}, per head, as reference.attention
takes them), gamma_k / beta_k of its k-th LayerNorm, and W_1, b_1, W_2, b_2 of its FFN.
"""
import torch

from .attention import attention, multi_head

EPSILON = 1e-5


def layer_norm(x, gamma, beta, eps=EPSILON):
    """layernorm: over the features, biased variance."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return gamma * (x - mean) / torch.sqrt(var + eps) + beta


def ffn(z, W_1, b_1, W_2, b_2, activation=torch.relu):
    """ffn: ReLU(z W_1 + b_1) W_2 + b_2 (ffn.gelu: activation=F.gelu)."""
    return activation(z @ W_1 + b_1) @ W_2 + b_2


def causal_mask(length, dtype, device):
    """mask.causal for a square decoder: -inf above the diagonal."""
    hidden = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
    return torch.zeros(length, length, dtype=dtype, device=device).masked_fill(hidden, float("-inf"))


def sublayer(x, fn, gamma, beta, pre_ln=False, norm=layer_norm):
    """Residual around fn, with LN after (post-LN, the article) or on fn's input (pre-LN: the variants
    enc.attn.pre_ln, enc.ffn.pre_ln, dec.self.pre_ln, dec.cross.pre_ln, dec.ffn.pre_ln)."""
    if pre_ln:
        return x + fn(norm(x, gamma, beta))
    return norm(x + fn(x), gamma, beta)


def encoder_layer(x, p, mask=None, pre_ln=False, activation=torch.relu, norm=layer_norm, block=sublayer):
    """enc.attn, enc.ffn: Z = LN(X + MultiHead(X, X, X)), E = LN(Z + FFN(Z)); mask: additive (B, 1, n, n)."""
    z = block(x, lambda t: multi_head(t, t, t, **p["attn"], mask=mask)[0], p["gamma_1"], p["beta_1"], pre_ln, norm)
    return block(z, lambda t: ffn(t, p["W_1"], p["b_1"], p["W_2"], p["b_2"], activation), p["gamma_2"],
                 p["beta_2"], pre_ln, norm)


def decoder_layer(y, memory, p, pre_ln=False, activation=torch.relu, norm=layer_norm, block=sublayer,
                  self_mask=causal_mask, cross_source=None, attend=attention, memory_mask=None):
    """dec.self, dec.cross, dec.ffn: causal self-attention, cross-attention to memory, FFN;
    memory_mask: additive (B, 1, 1, n), the source's key padding, for cross-attention.

    (self_mask, cross_source and attend are what a bug turns: the mask of the self-attention, where
    cross-attention takes its keys and values, `cross_source(a, memory)`, and self-attention itself.)"""
    mask = self_mask(y.shape[1], y.dtype, y.device)
    a = block(y, lambda t: multi_head(t, t, t, **p["self_attn"], mask=mask, attend=attend)[0], p["gamma_1"],
              p["beta_1"], pre_ln, norm)
    source = (lambda t: memory) if cross_source is None else (lambda t: cross_source(t, memory))
    b = block(a, lambda t: multi_head(t, source(t), source(t), **p["cross_attn"], mask=memory_mask)[0], p["gamma_2"],
              p["beta_2"], pre_ln, norm)
    return block(b, lambda t: ffn(t, p["W_1"], p["b_1"], p["W_2"], p["b_2"], activation), p["gamma_3"],
                 p["beta_3"], pre_ln, norm)


def classifier(d, W_c, b_c):
    """classifier: softmax(D W + b) over the vocabulary."""
    return torch.softmax(d @ W_c + b_c, dim=-1)


def encoder(x, layers, mask=None, layer=encoder_layer):
    """transformer.encoder: N encoder layers in sequence."""
    for p in layers:
        x = layer(x, p, mask=mask)
    return x


def decoder(y, memory, layers, layer=decoder_layer, memory_mask=None):
    """transformer.decoder: N decoder layers in sequence, each attending to the same memory (the last encoder's output)."""
    for p in layers:
        y = layer(y, memory, p) if memory_mask is None else layer(y, memory, p, memory_mask=memory_mask)
    return y


def positions(n, d, dtype, device):
    from .attention import positional_encoding
    return positional_encoding(n, d, dtype, device)


def model(src, tgt, p, src_mask=None):
    """transformer.model: token ids to next-token probabilities (post-LN, no final norm, the article's),
    the targets shifted right behind ⟨bos⟩ = token 0 (pe.shift_right);
    src_mask: additive (B, 1, 1, n), the source's key padding, for the encoder and cross-attention."""
    x = p["src_embedding"][src]
    x = x + positions(x.shape[1], x.shape[2], x.dtype, x.device)                 # pe.input
    memory = encoder(x, p["encoder"]["layers"], mask=src_mask)
    shifted = torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)      # pe.shift_right, ⟨bos⟩ = 0
    y = p["tgt_embedding"][shifted]
    y = y + positions(y.shape[1], y.shape[2], y.dtype, y.device)
    return classifier(decoder(y, memory, p["decoder"]["layers"], memory_mask=src_mask), p["W_c"], p["b_c"]), memory
