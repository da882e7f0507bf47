"""What adapters of real libraries share: the spec's parameters in a library's layout.

- `assign`: a spec parameter copied into a module's own, on autograd's tape, so that the gradient
  check (properties/engine/gradient.py) reaches the tensor the suite gave.
- `split_bias`: one spec bias b as two that sum to it exactly (PyTorch's and cuDNN's bias_ih and
  bias_hh), both non-zero, so that a library that drops either one fails.
- `per_head_rows`: per-head weights (h, d_in, d) acting on the right -> the (h·d, d_in) matrix of
  `F.linear`, head 1's rows first (nn.MultiheadAttention's q/k/v_proj_weight, a Linear's weight).
- `stack_heads`: the same weights as one (d_in, h·d) matrix acting on the right (GPT-2's Conv1D).
- `gate_rows`: a cell's gate matrices on [h, x] (h columns first) -> the input and hidden weights of
  a library, stacked in its gate order (GATE_ORDERS).
- masks between layouts: `additive` (booleans True where a query may attend -> 0 or -inf, the article's
  and SDPA's float form), `may_attend` (nn.MultiheadAttention's True-where-hidden attn_mask (n, m) and
  key_padding_mask (B, m) -> one (B, n, m) boolean True where a query may attend: Keras', SDPA's),
  `kept_tokens` (a True-where-padding key_padding_mask -> Hugging Face's and Keras' 0/1 attention_mask).
"""
from __future__ import annotations

import torch

# the order in which a library stacks its LSTM gates, by the spec's names (C: the candidate); GRUs are
# stacked by hand (torch r, z, n; Keras z, r, h), since the article's and the reset-after GRU differ
GATE_ORDERS = {"torch.lstm": "ifCo", "keras.lstm": "ifCo"}


def assign(target: torch.Tensor, value: torch.Tensor) -> None:
    """target (a module's parameter) := value, the copy recorded by autograd when value requires grad
    (the module's own parameters then require none: the gradient flows through to value)."""
    target.requires_grad_(False)
    target.copy_(value)


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


def additive(attends: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask, True where a query may attend -> the additive float mask: 0 there, else -inf."""
    return torch.zeros(attends.shape, dtype=dtype, device=attends.device).masked_fill(~attends, -torch.inf)


def may_attend(attn_mask: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
    """nn.MultiheadAttention's masks (True where hidden: attn_mask (n, m), key_padding_mask (B, m)) -> one
    (B, n, m) boolean, True where a query may attend."""
    return ~(attn_mask[None] | key_padding_mask[:, None, :])


def kept_tokens(key_padding_mask: torch.Tensor) -> torch.Tensor:
    """A key_padding_mask (True where padding) -> an attention_mask of 1 where a token is kept, 0 where
    it is padding (Hugging Face's, Keras')."""
    return (~key_padding_mask).long()


def stack_heads(W: torch.Tensor) -> torch.Tensor:
    """Per-head (h, d_in, d) acting on the right -> one (d_in, h·d) matrix acting on the right, head 1's
    columns first (a Conv1D's or Keras' kernel)."""
    h, d_in, d = W.shape
    return W.transpose(0, 1).reshape(d_in, h * d)
