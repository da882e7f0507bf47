"""§2 RNN architectures: a cell unrolled over time, stacked, bidirectional, and seq2seq.

A sequence is (B, T, n), batch first. A state is a dict of tensors keyed by the cell's state names
({"h"} or {"h", "C"}); the cell is called with them as h_prev=, C_prev= and returns them updated.
"""
import torch

from .cells import rnn_output


def unroll(cell, params, x, state, lengths=None, reverse=False):
    """seq.many_to_many: h_t = cell(h_{t-1}, x_t) at every t (from the last step back, with reverse);
    returns h (B, T, H) and the last state (seq.many_to_one: h_T). With lengths (B,), row b runs over
    its first lengths[b] steps only: at a padded step its state is kept and its output is 0."""
    T = x.shape[1]
    hs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        out = cell(x[:, t], **{f"{k}_prev": v for k, v in state.items()}, **params)
        new = {k: out[k] for k in state}
        if lengths is None:
            state, hs[t] = new, new["h"]
            continue
        real = (t < lengths)[:, None]
        state = {k: torch.where(real, new[k], state[k]) for k in state}
        hs[t] = torch.where(real, new["h"], torch.zeros_like(new["h"]))
    return torch.stack(hs, dim=1), state


def bidirectional(cell, params, x, state, lengths=None):
    """seq.bidirectional: params and state are lists of one (forward) or two (forward, backward)
    entries; the backward chain reads the sequence from its last step (each row's own, with lengths)
    back, and the states are concatenated per step, forward first. Returns (B, T, D*H) and the last
    states."""
    outs, finals = [], []
    for d, (p, s) in enumerate(zip(params, state)):
        out, final = unroll(cell, p, x, s, lengths, reverse=d == 1)
        outs.append(out)
        finals.append(final)
    return torch.cat(outs, dim=-1), finals


def stacked(cell, params, x, state, lengths=None):
    """seq.stacked: the output sequence of layer l is the input sequence of layer l+1.

    params is a list over layers of lists over directions of cell params; state is a dict of
    (B, L, D, H) tensors; lengths (B,), if given, each row's own length (the rest is padding).
    Returns the last layer's output (B, T, D*H) and the final states (B, L, D, H).
    """
    finals = []
    for k, directions in enumerate(params):
        layer_state = [{name: v[:, k, d] for name, v in state.items()} for d in range(len(directions))]
        x, layer_finals = bidirectional(cell, directions, x, layer_state, lengths)
        finals.append(layer_finals)
    stack = {k: torch.stack([torch.stack([f[k] for f in layer], 1) for layer in finals], 1) for k in state}
    return x, stack


def seq2seq(cell, encoder, decoder, output, x, y_prev, state):
    """seq.seq2seq: s_0 = h_T of the encoder, s_j = cell_dec(s_{j-1}, y_{j-1}), y_j = softmax(W_y s_j + b_y).

    Returns the decoder's states (B, m, H) and its outputs (B, m, V)."""
    _, last = unroll(cell, encoder, x, state)
    s, _ = unroll(cell, decoder, y_prev, last)
    return s, rnn_output(s, **output)
