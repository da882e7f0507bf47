"""Attention and positional-encoding mutants (§3–4): each is the reference (or, for an adapter
bug, the torch subject) with one small bug."""
from __future__ import annotations

import math
from functools import partial

import torch

from nlpspec.reference import attention as ref

from ..protocol import Subject
from ..reference import BUILDERS, VERSION, named, padding
from ..torch_attention import attention_builder
from .mutant import Mutant, mutant, zeroed


def scores_of(q, k, scale):
    return q @ k.transpose(-1, -2) * scale


def naive_softmax(scores, dim):
    """exp(s) / Σ exp(s), the row's maximum not subtracted: inf / inf past exp's overflow point."""
    e = torch.exp(scores)
    return e / e.sum(dim, keepdim=True)


def attend(q, k, v, mask=None, causal=False, scale=None, dim=-1, hide=None, after_softmax=False,
           softmax=torch.softmax):
    """The reference attention with knobs a bug turns: the scale, the softmax's axis, which keys
    the causal mask hides (hide(n, m) -> bool), a mask applied after the softmax, the softmax."""
    scores = scores_of(q, k, 1 / math.sqrt(q.shape[-1]) if scale is None else scale(q.shape[-1]))
    if causal:
        n, m = scores.shape[-2:]
        hidden = hide(n, m) if hide else torch.ones(n, m, dtype=torch.bool, device=q.device).triu(1)
        mask = torch.zeros(n, m, dtype=q.dtype, device=q.device).masked_fill(hidden.to(q.device), -math.inf)
    if mask is not None and not after_softmax:
        scores = scores + mask
    weights = softmax(scores, dim=dim)
    if mask is not None and after_softmax:
        weights = weights * torch.isfinite(mask)  # hidden keys zeroed, the rest not renormalised
    return weights @ v, weights


def with_gradient_of(value, leak):
    """`value` forward, with `leak`'s gradient added in the backward pass: a kernel whose forward is
    right and whose hand-written backward is not."""
    return value + (leak - leak.detach())


def backward_unmasked(q, k, v, mask=None, causal=False):
    """The mask applied in the forward pass only: the backward runs through the unmasked softmax."""
    out, weights = ref.attention(q, k, v, mask, causal)
    return with_gradient_of(out, ref.attention(q, k, v)[0]), weights


def multi_head(query, key, value, W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O, mask=None, attend=ref.attention,
               split=ref.split_heads, merge=ref.merge_heads):
    """reference.attention.multi_head with the pieces a bug turns as arguments: the attention, the
    head split, the merge."""
    q, k, v = (split(x @ ref.stack_heads(W) + b.reshape(-1), W.shape[0])
               for x, W, b in ((query, W_Q, b_Q), (key, W_K, b_K), (value, W_V, b_V)))
    heads, weights = attend(q, k, v, mask)
    return merge(heads) @ W_O + b_O, weights


def without_params(fn, *names):
    """The builder of a component without params: fn, its results named."""
    return lambda params: named(fn, *names)


def mha(multi_head):
    """An mha builder, as the reference adapter's, around a broken multi-head attention."""
    def build(params):
        def fn(query, key, value, attn_mask, key_padding_mask):
            return multi_head(query, key, value, **params, mask=attn_mask + padding(key_padding_mask))
        return named(fn, "out", "weights")
    return build


def causal(fn):
    return {"attention.causal": without_params(partial(fn, causal=True), "out", "weights")}


def both(fn):
    """A broken attention used by attention and attention.causal."""
    return {"attention": without_params(fn, "out", "weights"), **causal(fn)}


def everywhere(fn):
    """A broken attention used by every attention component, MHA included."""
    return {**both(fn), "mha": mha(partial(multi_head, attend=fn))}


def triu_from(offset):
    return lambda n, m: torch.ones(n, m, dtype=torch.bool).triu(offset)


def causal_lower_right(n, m):
    return torch.ones(n, m, dtype=torch.bool).triu(1 + m - n)


def keys_values_swapped(q, k, v, mask=None, causal=False):
    return ref.attention(q, v, k, mask, causal)


def raises_on_fully_masked_rows(q, k, v, mask=None, causal=False):
    if mask is not None and torch.isinf(mask).all(dim=-1).any():
        raise ValueError("a query has no key to attend to")
    return ref.attention(q, k, v, mask, causal)


# --- the sliding window (mask.sliding_window, the window an input drawn by the suite) ---------------
def window_one_wide(n, m, window):
    """Off by one: query i sees keys i - w <= j <= i, w + 1 of them (j < i - w hidden, not j <= i - w)."""
    ones = torch.ones(n, m, dtype=torch.bool)
    return ones.triu(1) | ones.tril(-window - 1)


def window_unmasked_when_covering(n, m, window):
    """A window at least as long as the sequence taken for "no mask at all": the causal mask dropped too."""
    ones = torch.ones(n, m, dtype=torch.bool)
    return torch.zeros_like(ones) if window >= max(n, m) else ones.triu(1) | ones.tril(-window)


def sliding_mutant(name: str, bug: str, hide) -> Mutant:
    """attention.causal and mha.causal declared as mask.sliding_window, taking the window as an input
    (so the suite draws it), their mask hide(n, m, window) -> bool."""
    def masked(window):
        return partial(attend, causal=True, hide=lambda n, m: hide(n, m, int(window)))

    def causal_builder(params):
        return lambda q, k, v, window: dict(zip(("out", "weights"), masked(window)(q, k, v)))

    def mha_causal_builder(params):
        return lambda x, window: dict(zip(("out", "weights"), multi_head(x, x, x, **params, attend=masked(window))))
    builders = {"attention.causal": causal_builder, "mha.causal": mha_causal_builder}
    subject = Subject(f"zoo.{name}", {**BUILDERS, **builders}, version=VERSION,
                      variants={component: "mask.sliding_window" for component in builders})
    return Mutant(subject, bug, tuple(builders))


# --- multi-head --------------------------------------------------------------------------------
def split_without_transpose(x, heads):
    B, n, width = x.shape
    return x.reshape(B, heads, n, width // heads)


def merge_reversed(z):
    return ref.merge_heads(z.flip(1))


def mha_without_output_projection(query, key, value, W_O, b_O, mask=None, **p):
    return ref.multi_head(query, key, value, **p, W_O=torch.eye(W_O.shape[0], dtype=W_O.dtype, device=W_O.device),
                          b_O=torch.zeros_like(W_O[0]), mask=mask)


def mha_keys_from_queries(query, key, value, mask=None, **p):
    return ref.multi_head(query, query, value, **p, mask=mask)


def mha_scaled_by_d_model(query, key, value, mask=None, **p):
    scale = 1 / math.sqrt(query.shape[-1])
    return multi_head(query, key, value, **p, mask=mask, attend=partial(attend, scale=lambda d_k: scale))


def mha_value_bias_ignored(query, key, value, b_V, mask=None, **p):
    return ref.multi_head(query, key, value, **p, b_V=torch.zeros_like(b_V), mask=mask)



# --- seq2seq attention and positional encoding -----------------------------------------------
def seq2seq_softmax_over_decoder(S, H):
    scores = S @ H.transpose(-1, -2) / math.sqrt(S.shape[-1])
    weights = torch.softmax(scores, dim=-2)
    return weights @ H, weights, scores


def encoding(n, d, dtype=torch.float32, device=None, swap=False, exponent=2, start=0, table=None):
    """The reference P with knobs a bug turns: sin and cos swapped, the exponent's factor, the
    first position, and a table of `table` rows that positions wrap around."""
    i = torch.arange(start, start + n, dtype=torch.float64, device=device)[:, None]
    if table:
        i = i % table
    pair = torch.arange(d, dtype=torch.float64, device=device) // 2
    angle = i / 10000 ** (exponent * pair / d)
    even = torch.arange(d, device=device) % 2 == 0
    P = torch.where(even != swap, torch.sin(angle), torch.cos(angle))
    return P.to(dtype)


def positions_on_half_the_batch(x):
    out, P = ref.add_positions(x)
    half = (x.shape[0] + 1) // 2
    return torch.cat([out[:half], x[half:]]), P


def pe(**knobs):
    """The pe component with the P of `encoding(**knobs)`."""
    def add_positions(x):
        P = encoding(x.shape[-2], x.shape[-1], x.dtype, x.device, **knobs)
        return x + P, P
    return {"pe": without_params(add_positions, "out", "P")}


def sdpa_polarity_inverted() -> Mutant:
    """An adapter bug: F.scaled_dot_product_attention declared as taking True = "hidden" (the
    nn.MultiheadAttention convention), so the mask reaches SDPA with its polarity inverted."""
    subject = Subject("zoo.sdpa_mask_polarity_inverted", {"attention": attention_builder}, version=VERSION,
                      variants={"attention": "mask.bool_true_masked"})
    return Mutant(subject, "SDPA adapter passes a True-means-hidden mask (SDPA reads True as may-attend)",
                  ("attention",))


MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("attn_unscaled", "scores not divided by √d_k", everywhere(partial(attend, scale=lambda d: 1.0))),
    mutant("attn_scaled_by_d_k", "scores divided by d_k instead of √d_k",
           everywhere(partial(attend, scale=lambda d: 1 / d))),
    mutant("attn_softmax_over_queries", "softmax over the query axis", everywhere(partial(attend, dim=-2))),
    mutant("attn_softmax_overflows", "a softmax that does not subtract the row's maximum: exp overflows",
           everywhere(partial(attend, softmax=naive_softmax))),
    mutant("attn_keys_values_swapped", "keys and values swapped",
           {"attention": without_params(keys_values_swapped, "out", "weights")}),
    mutant("mask_after_softmax", "mask applied after the softmax, without renormalising",
           everywhere(partial(attend, after_softmax=True))),
    mutant("attn_raises_on_fully_masked_rows", "raises when a query has no key visible",
           {"attention": without_params(raises_on_fully_masked_rows, "out", "weights")}),
    mutant("attn_backward_unmasked", "the mask applied in the forward pass only: gradients reach hidden keys",
           both(backward_unmasked)),
    mutant("causal_diagonal_masked", "causal mask hides the diagonal (j >= i)",
           causal(partial(attend, hide=triu_from(0)))),
    mutant("causal_one_ahead", "causal mask lets query i see key i + 1",
           causal(partial(attend, hide=triu_from(2)))),
    mutant("causal_lower_right_undeclared", "causal mask aligned lower-right, declared as the article's",
           causal(partial(attend, hide=causal_lower_right))),
    sliding_mutant("sliding_window_one_wide", "sliding window off by one: query i sees w + 1 keys (i - w ... i)",
                   window_one_wide),
    sliding_mutant("sliding_window_unmasked_when_covering", "a window as long as the sequence or longer taken for "
                   "no mask at all: the causal mask dropped too", window_unmasked_when_covering),
    mutant("mha_split_without_transpose", "head split by a reshape, without the transpose",
           {"mha": mha(partial(multi_head, split=split_without_transpose))}),
    mutant("mha_heads_reversed", "heads concatenated in reverse order",
           {"mha": mha(partial(multi_head, merge=merge_reversed))}),
    mutant("mha_without_output_projection", "W_O missing", {"mha": mha(mha_without_output_projection)}),
    mutant("mha_keys_from_queries", "cross-attention takes its keys from the queries' side",
           {"mha": mha(mha_keys_from_queries)}),
    mutant("mha_scaled_by_d_model", "scores divided by √d_model instead of √d_k",
           {"mha": mha(mha_scaled_by_d_model)}),
    mutant("mha_value_bias_ignored", "the value projection's bias b_V ignored", {"mha": mha(mha_value_bias_ignored)}),
    mutant("mha_key_padding_ignored", "key padding mask dropped", {"mha": zeroed("mha", "key_padding_mask")}),
    mutant("seq2seq_softmax_over_decoder", "seq2seq attention weights normalised over the decoder states",
           {"attn.seq2seq": without_params(seq2seq_softmax_over_decoder, "context", "weights", "scores")}),
    mutant("pe_sin_cos_swapped", "cos in the even columns, sin in the odd", pe(swap=True)),
    mutant("pe_exponent_j_over_d", "exponent j/d instead of 2j/d", pe(exponent=1)),
    mutant("pe_positions_from_1", "positions counted from 1", pe(start=1)),
    mutant("pe_table_wraps_at_1024", "a table of 1024 positions that longer inputs wrap around", pe(table=1024)),
    mutant("pe_half_batch", "P added to only the first half of the batch",
           {"pe": without_params(positions_on_half_the_batch, "out", "P")}),
    sdpa_polarity_inverted(),
)}
