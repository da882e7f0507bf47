"""A fused-kernel-style attention of one's own as an nlpspec subject: keys visited in tiles with
an online softmax (FlashAttention's algorithm, in plain PyTorch), a boolean "may attend" mask,
and the causal mask aligned lower-right, as FlashAttention aligns it.

    pytest --subject examples.tiled_attention:SUBJECT

It computes the same function as the article in a different order (a running max and a rescaled
running sum), so it rounds differently: the suite must pass it, and it does.
"""
import math

import torch

from nlpspec import Subject

TILE = 2  # keys per tile: small, so that the suite's short sequences span several tiles


def tiled_attention(q, k, v, allowed):
    """softmax(q k^T / √d_k, hiding keys where `allowed` is False) v, one tile of keys at a time."""
    scale = 1 / math.sqrt(q.shape[-1])
    running_max = torch.full(q.shape[:-1] + (1,), -math.inf, dtype=q.dtype, device=q.device)
    total = torch.zeros_like(running_max)
    out = torch.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype, device=q.device)
    for start in range(0, k.shape[-2], TILE):
        tile = slice(start, start + TILE)
        scores = (q @ k[..., tile, :].transpose(-1, -2) * scale).masked_fill(~allowed[..., tile], -math.inf)
        new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True))
        safe = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)  # nothing seen yet
        correction = torch.exp(running_max - safe)
        p = torch.exp(scores - safe)
        total = total * correction + p.sum(-1, keepdim=True)
        out = out * correction + p @ v[..., tile, :]
        running_max = new_max
    return out / total  # 0/0 = NaN where a query saw no key: undefined in the spec


def attention(params):
    return lambda q, k, v, mask: tiled_attention(q, k, v, mask)


def causal(params):
    def fn(q, k, v):
        n, m = q.shape[-2], k.shape[-2]
        allowed = torch.ones(n, m, dtype=torch.bool, device=q.device).tril(m - n)  # lower right
        return tiled_attention(q, k, v, allowed)
    return fn


SUBJECT = Subject(
    name="tiled", version="1.0",
    builders={"attention": attention, "attention.causal": causal},
    variants={"attention": "mask.bool_true_attends", "attention.causal": "mask.causal_lower_right"},
)
