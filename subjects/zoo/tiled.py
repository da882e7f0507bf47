"""Mutants of a tiled attention kernel (FlashAttention's loop: keys in tiles of 64, an online softmax)
whose bug lives at a tile boundary: below 65 positions they are exact, so only the scale profile's
sizes reach them (`Mutant.scale`; tests/test_zoo.py shows the ci profile misses them and scale does not).
"""
from __future__ import annotations

import math

import torch

from .mutant import mutant

TILE = 64


def online_softmax(q, k, v, hidden, tiles):
    """softmax(q kᵀ/√d_k, hidden keys -∞) v over the key tiles `tiles` (a list of index ranges), one
    tile at a time: a running maximum and a rescaled running sum."""
    scale = 1 / math.sqrt(q.shape[-1])
    running_max = torch.full(q.shape[:-1] + (1,), -math.inf, dtype=q.dtype, device=q.device)
    total = torch.zeros_like(running_max)
    out = torch.zeros(q.shape[:-1] + (v.shape[-1],), dtype=q.dtype, device=q.device)
    for keys in (t for t in tiles if len(t)):
        scores = (q @ k[..., keys, :].transpose(-1, -2) * scale).masked_fill(hidden[..., keys], -math.inf)
        new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True))
        safe = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)  # nothing seen yet
        correction = torch.exp(running_max - safe)
        p = torch.exp(scores - safe)
        total = total * correction + p.sum(-1, keepdim=True)
        out = out * correction + p @ v[..., keys, :]
        running_max = new_max
    return out / total  # 0/0 = NaN where a query saw no key: undefined in the spec


def seam_dropped(q, k, v, mask):
    """Each tile after the first starts one key late: the key at every multiple of 64 is never seen."""
    m = k.shape[-2]
    tiles = [torch.arange(start + (start > 0), min(start + TILE, m), device=q.device) for start in range(0, m, TILE)]
    return online_softmax(q, k, v, mask.isinf() & (mask < 0), tiles)


def diagonal_tile_skipped(q, k, v):
    """Causal, query tile by query tile: the key tiles before the query tile's own, and the own tile
    only for the first (`tiles[:qi]` where `tiles[:qi + 1]` was meant, then patched for qi = 0)."""
    n, m = q.shape[-2], k.shape[-2]
    hidden = torch.ones(n, m, dtype=torch.bool, device=q.device).triu(1)
    tiles = [torch.arange(start, min(start + TILE, m), device=q.device) for start in range(0, m, TILE)]
    outs = []
    for qi, start in enumerate(range(0, n, TILE)):
        rows = slice(start, min(start + TILE, n))
        outs.append(online_softmax(q[..., rows, :], k, v, hidden[rows], tiles[:qi] if qi else tiles[:1]))
    return torch.cat(outs, -2)


MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("attn_tile_seam_dropped", "a tiled kernel whose every tile after the first starts one key late",
           {"attention": lambda params: seam_dropped}, scale=True),
    mutant("causal_diagonal_tile_skipped", "a tiled causal kernel that skips each query tile's own key tile "
           "after the first", {"attention.causal": lambda params: diagonal_tile_skipped}, scale=True),
)}
