"""Recurrent mutants (§1–2): each is the reference with one small bug."""
from __future__ import annotations

from functools import partial

import torch

from nlpspec.reference import cells as ref
from nlpspec.reference import sequences as seq

from ..reference import CELLS
from .mutant import mutant


def cells(**replaced):
    return {**CELLS, **{kind: (lambda fn: lambda params: fn)(fn) for kind, fn in replaced.items()}}


# --- cells -------------------------------------------------------------------------------------
def lstm_gates_swapped(x, h_prev, C_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o):
    return ref.lstm_cell(x, h_prev, C_prev, W_i, b_i, W_f, b_f, W_C, b_C, W_o, b_o)


def lstm_output_on_C(x, h_prev, C_prev, **p):
    out = ref.lstm_cell(x, h_prev, C_prev, **p)
    return {**out, "h": out["o"] * out["C"]}


def lstm_candidate_sigmoid(x, h_prev, C_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o):
    hx = torch.cat([h_prev, x], -1)
    f, i, o = (torch.sigmoid(hx @ W.T + b) for W, b in ((W_f, b_f), (W_i, b_i), (W_o, b_o)))
    Chat = torch.sigmoid(hx @ W_C.T + b_C)
    C = f * C_prev + i * Chat
    return {"f": f, "i": i, "Chat": Chat, "C": C, "o": o, "h": o * torch.tanh(C)}


def lstm_forget_bias_dropped(x, h_prev, C_prev, b_f, **p):
    return ref.lstm_cell(x, h_prev, C_prev, b_f=torch.zeros_like(b_f), **p)


def rnn_bias_dropped(x, h_prev, W_hh, W_xh, b_h):
    return ref.rnn_cell(x, h_prev, W_hh, W_xh, torch.zeros_like(b_h))


def rnn_square_weight_transposed(x, h_prev, W_hh, W_xh, b_h):
    return ref.rnn_cell(x, h_prev, W_hh.T, W_xh, b_h)


def rnn_batch_rows_mixed(x, h_prev, W_hh, W_xh, b_h):
    return ref.rnn_cell(x, h_prev.roll(1, 0), W_hh, W_xh, b_h)


def lstm_state_in_place(x, h_prev, C_prev, **p):
    out = ref.lstm_cell(x, h_prev, C_prev, **p)
    C_prev.copy_(out["C"])  # reuses the old state's storage
    return {**out, "C": C_prev}


def gru_update_flipped(x, h_prev, **p):
    out = ref.gru_cell(x, h_prev, **p)
    return {**out, "h": out["z"] * h_prev + (1 - out["z"]) * out["htilde"]}


def gru_reset_after_as_article(x, h_prev, W_r, b_r, W_z, b_z, W_h, b_h):
    """A reset-after GRU (cuDNN's) given the article's parameters, as an adapter would map them."""
    H = h_prev.shape[-1]
    return ref.gru_cell_reset_after(x, h_prev, W_r, b_r, -W_z, -b_z, W_h[:, H:], b_h, W_h[:, :H],
                                    torch.zeros_like(b_h))


def rnn_dropout_left_on(x, h_prev, W_hh, W_xh, b_h):
    out = ref.rnn_cell(x, h_prev, W_hh, W_xh, b_h)
    return {"h": torch.nn.functional.dropout(out["h"], p=0.5, training=True)}


# --- architectures -----------------------------------------------------------------------------
def bidirectional_halves_swapped(cell, params, x, state):
    out, finals = seq.bidirectional(cell, params, x, state)
    if len(params) == 2:
        forward, backward = out.chunk(2, dim=-1)
        out = torch.cat([backward, forward], -1)
    return out, finals


def bidirectional_not_reversed_back(cell, params, x, state):
    outs, finals = [], []
    for d, (p, s) in enumerate(zip(params, state)):
        out, final = seq.unroll(cell, p, x.flip(1) if d == 1 else x, s)
        outs.append(out)  # the backward outputs stay in reversed time order
        finals.append(final)
    return torch.cat(outs, -1), finals


def stacked_fed_x(cell, params, x, state):
    """Every layer reads the input sequence x instead of the layer below's states."""
    runs = [seq.stacked(cell, [layer], x, {k: v[:, l:l + 1] for k, v in state.items()})
            for l, layer in enumerate(params)]
    return runs[-1][0], {k: torch.cat([finals[k] for _, finals in runs], 1) for k in state}


def layers_cold_start(cell, params, x, state):
    """The layer ignores the initial state it is given and starts from zeros."""
    return seq.stacked(cell, params, x, {k: torch.zeros_like(v) for k, v in state.items()})


def seq2seq_cold_decoder(cell, encoder, decoder, output, x, y_prev, state):
    """The decoder starts from zeros, not from the encoder's last state."""
    s, _ = seq.unroll(cell, decoder, y_prev, {k: torch.zeros_like(v) for k, v in state.items()})
    return s, ref.rnn_output(s, **output)


def output_softmax_over_batch(params):
    return lambda h: {"y": torch.softmax(h @ params["W_y"].T + params["b_y"], dim=0)}


MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("lstm_gates_swapped", "forget and input gates swapped", ("lstm.cell",),
           cells=cells(lstm=lstm_gates_swapped)),
    mutant("lstm_output_on_C", "output gate applied to C_t instead of tanh(C_t)", ("lstm.cell",),
           cells=cells(lstm=lstm_output_on_C)),
    mutant("lstm_candidate_sigmoid", "candidate with σ instead of tanh", ("lstm.cell",),
           cells=cells(lstm=lstm_candidate_sigmoid)),
    mutant("lstm_forget_bias_dropped", "forget gate without its bias", ("lstm.cell",),
           cells=cells(lstm=lstm_forget_bias_dropped)),
    mutant("lstm_state_in_place", "cell state updated in place in the caller's tensor", ("lstm.cell",),
           cells=cells(lstm=lstm_state_in_place)),
    mutant("rnn_bias_dropped", "vanilla RNN without b_h", ("rnn.cell",), cells=cells(rnn=rnn_bias_dropped)),
    mutant("rnn_square_weight_transposed", "W_hh used transposed", ("rnn.cell",),
           cells=cells(rnn=rnn_square_weight_transposed)),
    mutant("rnn_batch_rows_mixed", "each row reads another row's h_{t-1}", ("rnn.cell",),
           cells=cells(rnn=rnn_batch_rows_mixed)),
    mutant("rnn_dropout_left_on", "dropout on the new state, left on at evaluation", ("rnn.cell",),
           cells=cells(rnn=rnn_dropout_left_on)),
    mutant("gru_update_flipped", "GRU update convention flipped (z keeps the old state)", ("gru.cell",),
           cells=cells(gru=gru_update_flipped)),
    mutant("gru_reset_after_as_article", "a reset-after GRU declared as the article's", ("gru.cell",),
           cells=cells(gru=gru_reset_after_as_article)),
    mutant("bidirectional_halves_swapped", "bidirectional halves concatenated backward first",
           ("rnn.layers",), stacked=partial(seq.stacked, layer=bidirectional_halves_swapped)),
    mutant("bidirectional_not_reversed_back", "backward outputs not reversed back into time order",
           ("lstm.layers",), stacked=partial(seq.stacked, layer=bidirectional_not_reversed_back)),
    mutant("stacked_fed_x", "a stacked layer fed x instead of the states below", ("gru.layers",),
           stacked=stacked_fed_x),
    mutant("layers_cold_start", "the layer ignores its initial state (starts from zeros)", ("lstm.layers",),
           stacked=layers_cold_start),
    mutant("seq2seq_cold_decoder", "decoder started from zeros, not the encoder's last state", ("lstm.seq2seq",),
           seq2seq=seq2seq_cold_decoder),
    mutant("output_softmax_over_batch", "output softmax over the batch axis", ("rnn.output",),
           output=output_softmax_over_batch),
)}

