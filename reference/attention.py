"""§3–4 Attention and positional encoding, written as the article's equations.

Batch first, one row per position: queries (B, n, d_k), keys (B, m, d_k), values (B, m, d_v). A
mask is additive, as the article writes it: 0 where a key may be seen, -inf where it is hidden,
added to the scores before the softmax. Multi-head weights come per head: W_Q[h] is d_model×d_k
and acts on the right (X W_Q[h]); W_O is (h·d_v)×d_model.
"""
import math

import torch


def causal_hidden(n, m, device=None, window=None):
    """mask.causal's hidden keys (n, m): j > i, counted from the first of each (upper left); with a
    window w (mask.sliding_window), also j <= i - w: query i sees keys i - w < j <= i."""
    ones = torch.ones(n, m, dtype=torch.bool, device=device)
    return ones.triu(1) if window is None else ones.triu(1) | ones.tril(-int(window))


def attention(q, k, v, mask=None, causal=False, window=None):
    """self.attention / mask.given / mask.causal (mask.sliding_window with a window):
    softmax(Q K^T / √d_k + M) V; returns (out, weights).

    M is additive (0, or -inf where hidden): a given mask, or key padding (mask.key_padding) as a
    (B, 1, 1, m) row broadcast over the queries."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(causal_hidden(*scores.shape[-2:], q.device, window), -math.inf)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def split_heads(x, heads):
    """(B, n, h·d) -> (B, h, n, d): head h takes columns h·d … (h+1)·d - 1."""
    B, n, width = x.shape
    return x.reshape(B, n, heads, width // heads).transpose(1, 2)


def merge_heads(z):
    """(B, h, n, d) -> (B, n, h·d): the heads concatenated, head 1 first (mha.output)."""
    B, h, n, d = z.shape
    return z.transpose(1, 2).reshape(B, n, h * d)


def stack_heads(W):
    """Per-head weights (h, d_in, d) -> one (d_in, h·d) matrix, head 1's columns first."""
    h, d_in, d = W.shape
    return W.transpose(0, 1).reshape(d_in, h * d)


def multi_head(query, key, value, W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O, mask=None):
    """self.qkv, mha.head and mha.output: every head at once, biases (per head: h×d) on every row;
    returns (out, per-head weights (B, h, n, m))."""
    h = W_Q.shape[0]
    q = split_heads(query @ stack_heads(W_Q) + b_Q.reshape(-1), h)
    k = split_heads(key @ stack_heads(W_K) + b_K.reshape(-1), h)
    v = split_heads(value @ stack_heads(W_V) + b_V.reshape(-1), h)
    heads, weights = attention(q, k, v, mask)
    return merge_heads(heads) @ W_O + b_O, weights


def seq2seq_attention(S, H):
    """attn.score, attn.weights, attn.context: decoder states S (B, n, d_h) against encoder states
    H (B, m, d_h); returns (context, weights, scores)."""
    scores = S @ H.transpose(-1, -2) / math.sqrt(S.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return weights @ H, weights, scores


def positional_encoding(n, d, dtype=torch.float32, device=None):
    """pe.sin, pe.cos: P[i, 2j] = sin(i / 10000^(2j/d)), P[i, 2j+1] = cos(same), positions from 0.

    Computed in float64 and rounded once to dtype."""
    i = torch.arange(n, dtype=torch.float64, device=device)[:, None]
    pair = torch.arange(d, dtype=torch.float64, device=device) // 2
    angle = i / 10000 ** (2 * pair / d)
    P = torch.where(torch.arange(d, device=device) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return P.to(dtype)


def add_positions(x):
    """pe.input: X + P, for x of (B, n, d); returns (X + P, P)."""
    P = positional_encoding(x.shape[-2], x.shape[-1], x.dtype, x.device)
    return x + P, P
