"""§1 Recurrent cells: vanilla RNN, LSTM and GRU, one equation per E-id.

Vectors are columns: x_t is I×1, h_t and C_t are H×1, [h_{t-1}, x_t] is the (H+I)×1 block
column. Read top to bottom, each block is the article's figure of that cell.
"""
from __future__ import annotations

from sympy import BlockMatrix, MatAdd, MatrixSymbol, OneMatrix, symbols
from sympy import HadamardProduct as hadamard

from .equation import define
from .functions import Sigmoid as sigma
from .functions import Softmax as softmax
from .functions import Tanh as tanh

H, I, V = symbols("H I V", integer=True, positive=True)  # hidden size, input size, output size


def column(name, rows):
    return MatrixSymbol(name, rows, 1)


x, h_prev, C_prev = column("x", I), column("h_prev", H), column("C_prev", H)
h_x = BlockMatrix([[h_prev], [x]])  # [h_{t-1}, x_t]


def gate_weights(gate):
    """W_gate acting on [h_{t-1}, x_t], and b_gate."""
    return MatrixSymbol(f"W_{gate}", H, H + I), column(f"b_{gate}", H)


# --- vanilla RNN -------------------------------------------------------------------------------
W_hh, W_xh, b_h = MatrixSymbol("W_hh", H, H), MatrixSymbol("W_xh", H, I), column("b_h", H)
W_y, b_y = MatrixSymbol("W_y", V, H), column("b_y", V)
h = column("h", H)

RNN_CELL = define("rnn.cell", "The new hidden state squashes the old state and the input through tanh.",
                  h, tanh(W_hh * h_prev + W_xh * x + b_h))
RNN_OUTPUT = define("rnn.output", "The output is a softmax over an affine map of the hidden state.",
                    column("y", V), softmax(W_y * h + b_y))

# --- LSTM --------------------------------------------------------------------------------------
(W_f, b_f), (W_i, b_i), (W_C, b_C), (W_o, b_o) = map(gate_weights, "fiCo")
f, i, Chat, C, o = (column(n, H) for n in ("f", "i", "Chat", "C", "o"))

LSTM_FORGET = define("lstm.forget", "The forget gate says how much of each entry of C_{t-1} to keep.",
                     f, sigma(W_f * h_x + b_f))
LSTM_INPUT = define("lstm.input", "The input gate says how much of the candidate to write.",
                    i, sigma(W_i * h_x + b_i))
LSTM_CANDIDATE = define("lstm.candidate", "The candidate ('virtual cell state') is a tanh of [h_{t-1}, x_t].",
                        Chat, tanh(W_C * h_x + b_C))
LSTM_CELL = define("lstm.cell", "The cell state keeps f of the old state and adds i of the candidate.",
                   C, hadamard(f, C_prev) + hadamard(i, Chat))
LSTM_OUTPUT = define("lstm.output", "The output gate says how much of tanh(C_t) to show.",
                     o, sigma(W_o * h_x + b_o))
LSTM_HIDDEN = define("lstm.hidden", "The hidden state is the output gate times tanh of the cell state.",
                     h, hadamard(o, tanh(C)))

# --- GRU ---------------------------------------------------------------------------------------
(W_r, b_r), (W_z, b_z) = map(gate_weights, "rz")
W_h = MatrixSymbol("W_h", H, H + I)
r, z, htilde = column("r", H), column("z", H), column("htilde", H)
one = OneMatrix(H, 1)

GRU_RESET = define("gru.reset", "The reset gate says how much of h_{t-1} the candidate may see.",
                   r, sigma(W_r * h_x + b_r))
GRU_UPDATE = define("gru.update", "The update gate says how much of the candidate replaces h_{t-1}.",
                    z, sigma(W_z * h_x + b_z))
GRU_CANDIDATE = define("gru.candidate", "The candidate is a tanh of the reset old state and the input; "
                       "the reset acts before the matrix product.",
                       htilde, tanh(W_h * BlockMatrix([[hadamard(r, h_prev)], [x]]) + b_h))
GRU_HIDDEN = define("gru.hidden", "The new state blends the old state and the candidate by z_t.",
                    h, MatAdd(hadamard(MatAdd(one, -z, evaluate=False), h_prev), hadamard(z, htilde),
                              evaluate=False))

# --- GRU, the reset-after variant (cuDNN, PyTorch, Keras reset_after=True) ---------------------
W_in, b_in = MatrixSymbol("W_in", H, I), column("b_in", H)
W_hn, b_hn = MatrixSymbol("W_hn", H, H), column("b_hn", H)
n = column("n", H)

GRU_RESET_AFTER = define("gru.reset_after", "Variant: the reset gate scales W_hn h_{t-1} + b_hn after the "
                         "product, and z_t keeps the old state instead of writing the candidate.",
                         n, tanh(W_in * x + b_in + hadamard(r, W_hn * h_prev + b_hn)),
                         variant_of="gru.candidate")
GRU_RESET_AFTER_HIDDEN = define("gru.reset_after.hidden", "Variant: h_t = (1 - z_t) n_t + z_t h_{t-1}.",
                                h, MatAdd(hadamard(MatAdd(one, -z, evaluate=False), n), hadamard(z, h_prev),
                                          evaluate=False), variant_of="gru.hidden")

# The cells: equations in the order they are evaluated, and the state they carry.
CELLS = {
    "rnn": (RNN_CELL,),
    "lstm": (LSTM_FORGET, LSTM_INPUT, LSTM_CANDIDATE, LSTM_CELL, LSTM_OUTPUT, LSTM_HIDDEN),
    "gru": (GRU_RESET, GRU_UPDATE, GRU_CANDIDATE, GRU_HIDDEN),
    "gru.reset_after": (GRU_RESET, GRU_UPDATE, GRU_RESET_AFTER, GRU_RESET_AFTER_HIDDEN),
}
STATE = {"rnn": ("h",), "lstm": ("h", "C"), "gru": ("h",), "gru.reset_after": ("h",)}

# The value of z_t at which a GRU keeps its state (h_t = h_{t-1}); proved by substitution in tests.
UPDATE_KEEPS_STATE = {"gru": 0, "gru.reset_after": 1}
