"""The subject protocol: how any implementation plugs into nlpspec.

A subject offers components. For each component it offers, `builders[component]` receives the
spec-named parameters (torch tensors on the suite's device and dtype, drawn by the suite) and
returns a callable that computes the component in the spec's conventions:

    fn = subject.builders["lstm.cell"](params)      # params: {"W_f": (H, H+I), "b_f": (H,), ...}
    out = fn(x=x, h_prev=h, C_prev=C)               # -> {"h": (B, H), "C": (B, H)} (+ gates)

Conventions: batch first, one row per example; weights as the article writes them (W acts on a
column [h_{t-1}, x_t], so W_f is H×(H+I) with the h columns first); biases are vectors. The
callable returns a dict keyed by spec names (a bare tensor for a one-output component). Extra
outputs named in the spec (the gates "f", "i", "Chat", "o", "r", "z", "htilde", "n") are checked
too, which points a failure at one equation.

Components of §1–2 (inputs -> outputs; H hidden, I input, V output, B batch, T and m lengths):

    rnn.cell        {W_hh, W_xh, b_h}            x (B,I), h_prev (B,H)            -> h
    rnn.output      {W_y, b_y}                   h (B,H)                          -> y (B,V)
    lstm.cell       {W_f,b_f,W_i,b_i,W_C,b_C,W_o,b_o}  x, h_prev, C_prev         -> h, C
    gru.cell        {W_r,b_r,W_z,b_z,W_h,b_h}    x, h_prev                        -> h
                    (variant gru.reset_after: {W_r,b_r,W_z,b_z,W_in,b_in,W_hn,b_hn})
    KIND.layers     {"layers": [[fwd] or [fwd, bwd] per layer]}, each a KIND.cell parameter dict
                    (layer l > 0 reads D·H inputs)    x (B,T,I), h_prev (B,L,D,H) [, C_prev]
                                                  -> out (B,T,D·H) (forward half first), h (B,L,D,H) [, C]
    KIND.seq2seq    {"encoder": cell params, "decoder": cell params, "output": {W_y, b_y}}
                    x (B,T,I), y_prev (B,m,J) decoder inputs, h_prev (B,H) [, C_prev (B,H)]
                                                  -> h (B,m,H) decoder states, y (B,m,V)

KIND is rnn, lstm or gru. A subject that implements a named variant of the article says so in
`variants` ({component: variant E-id}); it is then checked against that variant and reported
under its name. `expected_failures` maps a check id ("lstm.cell-oracle") to the reason; one that
passes is reported as stale. `options` lists implementation knobs the suite sweeps
({component: {"batch_first": [True, False]}}); each value reaches the builder as a keyword.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Builder = Callable[..., Callable[..., Any]]


@dataclass
class Subject:
    """An implementation under test: a name and a builder per component it offers."""

    name: str
    builders: dict[str, Builder]
    version: str = ""
    variants: dict[str, str] = field(default_factory=dict)
    expected_failures: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, list]] = field(default_factory=dict)

    def offers(self, component: str) -> bool:
        return component in self.builders
