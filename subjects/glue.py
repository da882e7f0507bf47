"""What adapters of real libraries share: the spec's parameters in a library's layout.

- `split_bias`: one spec bias b as two that sum to it exactly (PyTorch's and cuDNN's bias_ih and
  bias_hh), both non-zero, so that a library that drops either one fails.
- `per_head_rows`: per-head weights (h, d_in, d) acting on the right -> the (h·d, d_in) matrix of
  `F.linear`, head 1's rows first (nn.MultiheadAttention's q/k/v_proj_weight, a Linear's weight).
- `stack_heads`: the same weights as one (d_in, h·d) matrix acting on the right (GPT-2's Conv1D).
- `gate_rows`: a cell's gate matrices on [h, x] (h columns first) -> the input and hidden weights of
  a library, stacked in its gate order (GATE_ORDERS).
"""
from __future__ import annotations

import torch

# the order in which a library stacks its LSTM gates, by the spec's names (C: the candidate); GRUs are
# stacked by hand (torch r, z, n; Keras z, r, h), since the article's and the reset-after GRU differ
GATE_ORDERS = {"torch.lstm": "ifCo", "keras.lstm": "ifCo"}


def split_bias(b: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(b - s, s) with s = u·b, u drawn in [1/2, 1): b - s is exact (Sterbenz), so the two sum to b
    exactly; both are non-zero wherever b is."""
    u = torch.rand(b.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) / 2 + 0.5
    s = b * u.to(device=b.device, dtype=b.dtype)
    return b - s, s


def per_head_rows(W: torch.Tensor) -> torch.Tensor:
    """Per-head (h, d_in, d) acting on the right -> (h·d, d_in) acting as F.linear."""
    h, d_in, d = W.shape
    return W.transpose(1, 2).reshape(h * d, d_in)


def gate_rows(gates: list[torch.Tensor], hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gate matrices W_g (H, H + I) on [h, x] -> (weight_ih (k·H, I), weight_hh (k·H, H)), stacked in
    the order given."""
    return torch.cat([W[:, hidden:] for W in gates]), torch.cat([W[:, :hidden] for W in gates])


def stack_heads(W: torch.Tensor) -> torch.Tensor:
    """Per-head (h, d_in, d) acting on the right -> one (d_in, h·d) matrix acting on the right, head 1's
    columns first (a Conv1D's or Keras' kernel)."""
    h, d_in, d = W.shape
    return W.transpose(0, 1).reshape(d_in, h * d)
