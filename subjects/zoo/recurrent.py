"""Recurrent mutants (§1–2): each is the reference with one small bug."""
from __future__ import annotations

import torch

from nlpspec.reference import cells as ref
from nlpspec.reference import sequences as seq

from ..reference import bound, state
from .mutant import mutant, zeroed


def layers(stacked, cell):
    """A KIND.layers builder, as the reference adapter's, around a broken stack of `cell`."""
    def build(params):
        def fn(x, h_prev, C_prev=None):
            out, final = stacked(cell, params["layers"], x, state(h_prev, C_prev))
            return {"out": out, **final}
        return fn
    return build


# --- cells -------------------------------------------------------------------------------------
def lstm_gates_swapped(x, h_prev, C_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o):
    return ref.lstm_cell(x, h_prev, C_prev, W_i, b_i, W_f, b_f, W_C, b_C, W_o, b_o)


def lstm_sigmoid_overflows(x, h_prev, C_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o):
    """σ(a) written as e^a / (1 + e^a): inf / inf = NaN once a passes exp's overflow."""
    hx = torch.cat([h_prev, x], -1)
    f, i, o = (torch.exp(a) / (1 + torch.exp(a)) for a in (hx @ W.T + b for W, b in ((W_f, b_f), (W_i, b_i), (W_o, b_o))))
    Chat = torch.tanh(hx @ W_C.T + b_C)
    C = f * C_prev + i * Chat
    return {"f": f, "i": i, "Chat": Chat, "C": C, "o": o, "h": o * torch.tanh(C)}


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
def each_layer(change):
    """seq.stacked run one layer at a time, each bidirectional layer's output changed by
    `change(forward half, backward half)` before the next layer reads it."""
    def stacked(cell, params, x, state):
        finals = []
        for l, directions in enumerate(params):
            x, final = seq.stacked(cell, [directions], x, {k: v[:, l:l + 1] for k, v in state.items()})
            x = change(*x.chunk(2, -1)) if len(directions) == 2 else x
            finals.append(final)
        return x, {k: torch.cat([f[k] for f in finals], 1) for k in state}
    return stacked


def halves_swapped(forward, backward):
    return torch.cat([backward, forward], -1)


def backward_not_reversed_back(forward, backward):
    return torch.cat([forward, backward.flip(1)], -1)  # the backward outputs stay in reversed time order


def stacked_fed_x(cell, params, x, state):
    """Every layer reads the input sequence x instead of the layer below's states."""
    runs = [seq.stacked(cell, [layer], x, {k: v[:, l:l + 1] for k, v in state.items()})
            for l, layer in enumerate(params)]
    return runs[-1][0], {k: torch.cat([finals[k] for _, finals in runs], 1) for k in state}


def padded(cell, forward_lengths: bool, backward_lengths: bool):
    """A KIND.layers_padded builder around the reference's chains, each direction given the lengths or
    not: a chain not given them runs over the padding too (its outputs there zeroed, as
    pad_packed_sequence's are, its final state the one after the padding)."""
    def build(params):
        def fn(x, lengths, h_prev, C_prev=None):
            real = (torch.arange(x.shape[1], device=x.device) < lengths[:, None])[..., None]
            s, finals = state(h_prev, C_prev), []
            for l, directions in enumerate(params["layers"]):
                outs, layer = [], []
                for d, p in enumerate(directions):
                    given = lengths if (backward_lengths if d else forward_lengths) else None
                    out, final = seq.unroll(cell, p, x, {k: v[:, l, d] for k, v in s.items()}, given, reverse=d == 1)
                    outs.append(torch.where(real, out, torch.zeros_like(out)))
                    layer.append(final)
                x = torch.cat(outs, -1)
                finals.append(layer)
            return {"out": x, **{k: torch.stack([torch.stack([f[k] for f in layer], 1) for layer in finals], 1)
                                 for k in s}}
        return fn
    return build


def seq2seq_cold_decoder(params):
    """The decoder starts from zeros, not from the encoder's last state."""
    def fn(x, y_prev, h_prev, C_prev):
        s, _ = seq.unroll(ref.lstm_cell, params["decoder"], y_prev,
                          {"h": torch.zeros_like(h_prev), "C": torch.zeros_like(C_prev)})
        return {"h": s, "y": ref.rnn_output(s, **params["output"])}
    return fn


def output_softmax_over_batch(params):
    return lambda h: {"y": torch.softmax(h @ params["W_y"].T + params["b_y"], dim=0)}


MUTANTS = {m.subject.name.removeprefix("zoo."): m for m in (
    mutant("lstm_gates_swapped", "forget and input gates swapped",
           {"lstm.cell": bound(lstm_gates_swapped)}),
    mutant("lstm_output_on_C", "output gate applied to C_t instead of tanh(C_t)",
           {"lstm.cell": bound(lstm_output_on_C)}),
    mutant("lstm_sigmoid_overflows", "gates' σ as e^a / (1 + e^a): exp overflows on saturated gates",
           {"lstm.cell": bound(lstm_sigmoid_overflows)}),
    mutant("lstm_candidate_sigmoid", "candidate with σ instead of tanh",
           {"lstm.cell": bound(lstm_candidate_sigmoid)}),
    mutant("lstm_forget_bias_dropped", "forget gate without its bias",
           {"lstm.cell": bound(lstm_forget_bias_dropped)}),
    mutant("lstm_state_in_place", "cell state updated in place in the caller's tensor",
           {"lstm.cell": bound(lstm_state_in_place)}),
    mutant("rnn_bias_dropped", "vanilla RNN without b_h", {"rnn.cell": bound(rnn_bias_dropped)}),
    mutant("rnn_square_weight_transposed", "W_hh used transposed",
           {"rnn.cell": bound(rnn_square_weight_transposed)}),
    mutant("rnn_batch_rows_mixed", "each row reads another row's h_{t-1}",
           {"rnn.cell": bound(rnn_batch_rows_mixed)}),
    mutant("rnn_dropout_left_on", "dropout on the new state, left on at evaluation",
           {"rnn.cell": bound(rnn_dropout_left_on)}),
    mutant("gru_update_flipped", "GRU update convention flipped (z keeps the old state)",
           {"gru.cell": bound(gru_update_flipped)}),
    mutant("gru_reset_after_as_article", "a reset-after GRU declared as the article's",
           {"gru.cell": bound(gru_reset_after_as_article)}),
    mutant("bidirectional_halves_swapped", "bidirectional halves concatenated backward first",
           {"rnn.layers": layers(each_layer(halves_swapped), ref.rnn_cell)}),
    mutant("bidirectional_not_reversed_back", "backward outputs not reversed back into time order",
           {"lstm.layers": layers(each_layer(backward_not_reversed_back), ref.lstm_cell)}),
    mutant("stacked_fed_x", "a stacked layer fed x instead of the states below",
           {"gru.layers": layers(stacked_fed_x, ref.gru_cell)}),
    mutant("layers_cold_start", "the layer ignores its initial state (starts from zeros)",
           {"lstm.layers": zeroed("lstm.layers", "h_prev", "C_prev")}),
    mutant("padded_backward_from_padded_end", "the backward direction starts at the padded end, reading the "
           "padding first", {"lstm.layers_padded": padded(ref.lstm_cell, True, False)}),
    mutant("padded_final_at_padded_end", "the forward chain runs over the padding: its final state is the one "
           "after the padded steps", {"gru.layers_padded": padded(ref.gru_cell, False, True)}),
    mutant("seq2seq_cold_decoder", "decoder started from zeros, not the encoder's last state",
           {"lstm.seq2seq": seq2seq_cold_decoder}),
    mutant("output_softmax_over_batch", "output softmax over the batch axis",
           {"rnn.output": output_softmax_over_batch}),
)}
