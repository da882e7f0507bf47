"""The README's worked example: an LSTM cell of one's own, as an nlpspec subject.

    pytest --pyargs nlpspec --subject examples.my_lstm:SUBJECT
"""
import torch

from nlpspec import Subject


def my_lstm_cell(params):
    W = torch.cat([params["W_i"], params["W_f"], params["W_C"], params["W_o"]])  # your layout
    b = torch.cat([params["b_i"], params["b_f"], params["b_C"], params["b_o"]])

    def step(x, h_prev, C_prev):
        i, f, g, o = (torch.cat([h_prev, x], -1) @ W.T + b).chunk(4, -1)
        C = torch.sigmoid(f) * C_prev + torch.sigmoid(i) * torch.tanh(g)
        return {"h": torch.sigmoid(o) * torch.tanh(C), "C": C}
    return step


SUBJECT = Subject(
    name="mine", version="1.0",
    builders={"lstm.cell": my_lstm_cell},
    variants={},            # e.g. {"gru.cell": "gru.reset_after"} for a cuDNN-style GRU
    expected_failures={},   # {"lstm.cell-highway": "why"}: reported as xfail; one that passes is "stale"
    options={},             # knobs the suite sweeps: {"lstm.layers": {"batch_first": [True, False]}}
)
