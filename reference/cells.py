"""§1 Recurrent cells, one function per cell, written as the article's equations.

Row vectors, batch first: x is (B, I), h and C are (B, H). A weight W acts as W v, which on rows is
v @ W.T; [h_{t-1}, x_t] is torch.cat([h_prev, x], -1), h first, as the columns of W_f are laid out.
Each cell returns its new state and the intermediates, keyed by the spec's names.
"""
import torch


def rnn_cell(x, h_prev, W_hh, W_xh, b_h):
    """rnn.cell: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)."""
    h = torch.tanh(h_prev @ W_hh.T + x @ W_xh.T + b_h)
    return {"h": h}


def rnn_output(h, W_y, b_y):
    """rnn.output: y_t = softmax(W_y h_t + b_y), over the last dimension (any leading shape)."""
    return torch.softmax(h @ W_y.T + b_y, dim=-1)


def lstm_cell(x, h_prev, C_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o):
    """lstm.forget, lstm.input, lstm.candidate, lstm.cell, lstm.output, lstm.hidden."""
    hx = torch.cat([h_prev, x], -1)              # [h_{t-1}, x_t]
    f = torch.sigmoid(hx @ W_f.T + b_f)          # forget gate
    i = torch.sigmoid(hx @ W_i.T + b_i)          # input gate
    Chat = torch.tanh(hx @ W_C.T + b_C)          # candidate ("virtual cell state")
    C = f * C_prev + i * Chat                    # cell state
    o = torch.sigmoid(hx @ W_o.T + b_o)          # output gate
    h = o * torch.tanh(C)                        # hidden state
    return {"f": f, "i": i, "Chat": Chat, "C": C, "o": o, "h": h}


def gru_cell(x, h_prev, W_r, b_r, W_z, b_z, W_h, b_h):
    """gru.reset, gru.update, gru.candidate (reset before the product), gru.hidden."""
    hx = torch.cat([h_prev, x], -1)              # [h_{t-1}, x_t]
    r = torch.sigmoid(hx @ W_r.T + b_r)          # reset gate
    z = torch.sigmoid(hx @ W_z.T + b_z)          # update gate
    htilde = torch.tanh(torch.cat([r * h_prev, x], -1) @ W_h.T + b_h)  # candidate
    h = (1 - z) * h_prev + z * htilde            # blend
    return {"r": r, "z": z, "htilde": htilde, "h": h}


def gru_cell_reset_after(x, h_prev, W_r, b_r, W_z, b_z, W_in, b_in, W_hn, b_hn):
    """gru.reset, gru.update, gru.reset_after, gru.reset_after.hidden (the cuDNN/PyTorch variant)."""
    hx = torch.cat([h_prev, x], -1)              # [h_{t-1}, x_t]
    r = torch.sigmoid(hx @ W_r.T + b_r)          # reset gate
    z = torch.sigmoid(hx @ W_z.T + b_z)          # update gate
    n = torch.tanh(x @ W_in.T + b_in + r * (h_prev @ W_hn.T + b_hn))  # candidate, reset after
    h = (1 - z) * n + z * h_prev                 # z keeps the old state
    return {"r": r, "z": z, "n": n, "h": h}
