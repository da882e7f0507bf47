"""§2 RNN architectures: a cell unrolled over time, stacked, bidirectional, and seq2seq.

A sequence is (B, T, n), batch first. A state is a dict of tensors keyed by the cell's state names
({"h"} or {"h", "C"}); the cell is called with them as h_prev=, C_prev= and returns them updated.
"""
import torch

from .cells import rnn_output


def unroll(cell, params, x, state):
    """seq.many_to_many: h_t = cell(h_{t-1}, x_t) at every t; returns h (B, T, H) and the last state
    (seq.many_to_one: h_T)."""
    hs = []
    for t in range(x.shape[1]):
        out = cell(x[:, t], **{f"{k}_prev": v for k, v in state.items()}, **params)
        state = {k: out[k] for k in state}
        hs.append(state["h"])
    return torch.stack(hs, dim=1), state


def bidirectional(cell, params, x, state):
    """seq.bidirectional: params and state are lists of one (forward) or two (forward, backward)
    entries; the backward chain reads the reversed sequence, its outputs are put back in time order,
    and the states are concatenated per step, forward first. Returns (B, T, D*H) and the last states."""
    outs, finals = [], []
    for d, (p, s) in enumerate(zip(params, state)):
        seq = x.flip(1) if d == 1 else x
        out, final = unroll(cell, p, seq, s)
        outs.append(out.flip(1) if d == 1 else out)
        finals.append(final)
    return torch.cat(outs, dim=-1), finals


def stacked(cell, params, x, state):
    """seq.stacked: the output sequence of layer l is the input sequence of layer l+1.

    params is a list over layers of lists over directions of cell params; state is a dict of
    (B, L, D, H) tensors. Returns the last layer's output (B, T, D*H) and the final states (B, L, D, H).
    """
    finals = []
    for k, directions in enumerate(params):
        layer_state = [{name: v[:, k, d] for name, v in state.items()} for d in range(len(directions))]
        x, layer_finals = bidirectional(cell, directions, x, layer_state)
        finals.append(layer_finals)
    stack = {k: torch.stack([torch.stack([f[k] for f in layer], 1) for layer in finals], 1) for k in state}
    return x, stack


def seq2seq(cell, encoder, decoder, output, x, y_prev, state):
    """seq.seq2seq: s_0 = h_T of the encoder, s_j = cell_dec(s_{j-1}, y_{j-1}), y_j = softmax(W_y s_j + b_y).

    Returns the decoder's states (B, m, H) and its outputs (B, m, V)."""
    _, last = unroll(cell, encoder, x, state)
    s, _ = unroll(cell, decoder, y_prev, last)
    return s, rnn_output(s, **output)
