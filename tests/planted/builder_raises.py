"""An LSTM cell whose builder reads a parameter by a wrong name: a KeyError raised in the user's
own code, which the failure must point at (this file, its line).

    pytest --pyargs nlpspec --subject tests.planted.builder_raises:SUBJECT -k lstm.cell
"""
import torch

from nlpspec import Subject


def weights(params):
    return torch.cat([params["W_i"], params["W_forget"], params["W_C"], params["W_o"]])  # the bug: W_f


def lstm_cell(params):
    W = weights(params)
    b = torch.cat([params["b_i"], params["b_f"], params["b_C"], params["b_o"]])

    def step(x, h_prev, C_prev):
        i, f, g, o = (torch.cat([h_prev, x], -1) @ W.T + b).chunk(4, -1)
        C = torch.sigmoid(f) * C_prev + torch.sigmoid(i) * torch.tanh(g)
        return {"h": torch.sigmoid(o) * torch.tanh(C), "C": C}
    return step


SUBJECT = Subject(name="builder_raises", version="0.0.1", builders={"lstm.cell": lstm_cell})
