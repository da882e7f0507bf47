"""The built-in subject "torch": PyTorch's own recurrent modules, fed the spec's parameters
(its attention modules: subjects/torch_attention.py; its Transformer layers:
subjects/torch_transformer.py).

rnn.cell is nn.RNNCell (tanh) with weight_ih = W_xh, weight_hh = W_hh, and b_h split into bias_ih and
bias_hh (glue.split_bias: both non-zero, summing to b_h exactly, so a library dropping one fails);
rnn.output is softmax(F.linear(h, W_y, b_y)). lstm.cell is nn.LSTMCell: each gate's W_g (on
[h, x], h columns first) splits into its weight_hh rows W_g[:, :H] and weight_ih rows W_g[:, H:],
stacked in PyTorch's order i, f, g (= the candidate C), o; the stacked b is split into bias_ih and bias_hh.
gru.cell is nn.GRUCell (order r, z, n), which computes the variant gru.reset_after: its params
{W_r, b_r, W_z, b_z, W_in, b_in, W_hn, b_hn} map directly (b_r, b_z split; b_in into bias_ih, b_hn
into bias_hh). Given the article's
GRU params (W_h, b_h) instead, z is mapped with its sign flipped (σ(-a) = 1 - σ(a)) and W_h is cut
into W_hn = W_h[:, :H], W_in = W_h[:, H:], b_in = b_h, b_hn = 0: the reset still acts after the
product, so the result differs from gru.candidate, which is the point of such a check.
KIND.layers is nn.RNN / nn.LSTM / nn.GRU, each layer and direction mapped as its cell
(weight_ih_l{k}[_reverse], ...), the spec's h_prev (B, L, D, H) laid out as torch's (L·D, B, H);
KIND.layers_padded is the same module given a PackedSequence (pack_padded_sequence of the lengths,
enforce_sorted=False) and its output padded back to T with zeros (pad_packed_sequence, total_length=T);
KIND.seq2seq is a one-layer encoder module whose final state starts a decoder module, followed by
softmax(F.linear(., W_y, b_y)).

Every component runs also compiled, as the option set "compiled" (subjects/torch_compiled.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from . import torch_attention, torch_compiled, torch_transformer
from .protocol import Subject
from .glue import GATE_ORDERS, assign, gate_rows, split_bias

CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
SEQUENCES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def sizes(kind: str, p: dict) -> tuple[int, int]:
    """(input size I, hidden size H) of one cell's spec params."""
    if kind == "rnn":
        return p["W_xh"].shape[1], p["W_hh"].shape[0]
    W = p["W_f"] if kind == "lstm" else p["W_r"]
    H = W.shape[0]
    return W.shape[1] - H, H


def torch_weights(kind: str, p: dict):
    """Spec params of one cell -> (weight_ih, weight_hh, bias_ih, bias_hh) in PyTorch's layout."""
    if kind == "rnn":
        return (p["W_xh"], p["W_hh"], *split_bias(p["b_h"]))
    H = sizes(kind, p)[1]
    if kind == "lstm":
        order = GATE_ORDERS["torch.lstm"]  # i, f, g (the candidate C), o
        return (*gate_rows([p[f"W_{g}"] for g in order], H), *split_bias(torch.cat([p[f"b_{g}"] for g in order])))
    # gru, PyTorch's order r, z, n
    W_r, b_r, W_z, b_z = p["W_r"], p["b_r"], p["W_z"], p["b_z"]
    if "W_h" in p:  # the article's params: z_torch = 1 - z_article, the reset stays after the product
        W_z, b_z = -W_z, -b_z
        W_in, W_hn, b_in, b_hn = p["W_h"][:, H:], p["W_h"][:, :H], p["b_h"], torch.zeros_like(p["b_h"])
    else:  # gru.reset_after
        W_in, W_hn, b_in, b_hn = p["W_in"], p["W_hn"], p["b_in"], p["b_hn"]
    (ih_r, hh_r), (ih_z, hh_z) = split_bias(b_r), split_bias(b_z)
    weight_ih, weight_hh = gate_rows([W_r, W_z], H)
    return (torch.cat([weight_ih, W_in]), torch.cat([weight_hh, W_hn]), torch.cat([ih_r, ih_z, b_in]),
            torch.cat([hh_r, hh_z, b_hn]))


def load(module: nn.Module, kind: str, p: dict, suffix: str = "") -> None:
    """Assign one cell's spec params to module's weight_ih{suffix}, weight_hh{suffix}, ..."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    for name, value in zip(names, torch_weights(kind, p)):
        assign(getattr(module, name + suffix), value)


def placed(module: nn.Module, like: torch.Tensor) -> nn.Module:
    """module on like's device and dtype, in eval mode, without gradients of its own."""
    return module.to(device=like.device, dtype=like.dtype).eval().requires_grad_(False)


def cell_builder(kind: str):
    def build(params: dict):
        I, H = sizes(kind, params)
        cell = placed(CELLS[kind](I, H), next(iter(params.values())))
        load(cell, kind, params)
        if kind == "lstm":
            def fn(x, h_prev, C_prev):
                h, C = cell(x, (h_prev, C_prev))
                return {"h": h, "C": C}
        else:
            def fn(x, h_prev):
                return {"h": cell(x, h_prev)}
        return fn
    return build


def sequence_module(kind: str, layers: list, batch_first: bool) -> nn.Module:
    """nn.RNN / nn.LSTM / nn.GRU holding layers[k][d], the spec params of layer k, direction d."""
    I, H = sizes(kind, layers[0][0])
    module = SEQUENCES[kind](I, H, num_layers=len(layers), bidirectional=len(layers[0]) == 2,
                             batch_first=batch_first)
    placed(module, next(iter(layers[0][0].values())))
    for k, layer in enumerate(layers):
        for d, p in enumerate(layer):
            load(module, kind, p, f"_l{k}" + ("_reverse" if d else ""))
    return module


def to_torch_state(s):
    """(B, L, D, H) -> (L·D, B, H), index layer·D + direction as PyTorch lays out h_0 and h_n."""
    B, L, D, H = s.shape
    return s.permute(1, 2, 0, 3).reshape(L * D, B, H).contiguous()


def from_torch_state(s, L: int, D: int):
    """(L·D, B, H) -> (B, L, D, H)."""
    return s.reshape(L, D, s.shape[1], s.shape[2]).permute(2, 0, 1, 3)


def layers_builder(kind: str, padded: bool = False):
    """KIND.layers; `padded` (KIND.layers_padded): x packed by its lengths (pack_padded_sequence,
    enforce_sorted=False) and the output padded back to T with zeros (pad_packed_sequence)."""
    def build(params: dict, batch_first: bool = True):
        layers = params["layers"]
        L, D = len(layers), len(layers[0])
        module = sequence_module(kind, layers, batch_first)

        def fn(x, h_prev, C_prev=None, lengths=None):
            state = to_torch_state(h_prev)
            if kind == "lstm":
                state = (state, to_torch_state(C_prev))
            seq = x if batch_first else x.transpose(0, 1)
            if padded:
                seq = pack_padded_sequence(seq, lengths.cpu(), batch_first=batch_first, enforce_sorted=False)
            out, final = module(seq, state)
            if padded:
                out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=x.shape[1])
            result = {"out": out if batch_first else out.transpose(0, 1)}
            if kind == "lstm":
                result["h"], result["C"] = (from_torch_state(s, L, D) for s in final)
            else:
                result["h"] = from_torch_state(final, L, D)
            return result
        return fn
    return build


def output_builder(params: dict):
    def fn(h):
        return {"y": torch.softmax(F.linear(h, params["W_y"], params["b_y"]), dim=-1)}
    return fn


def seq2seq_builder(kind: str):
    def build(params: dict):
        encoder = sequence_module(kind, [[params["encoder"]]], batch_first=True)
        decoder = sequence_module(kind, [[params["decoder"]]], batch_first=True)
        output = output_builder(params["output"])

        def fn(x, y_prev, h_prev, C_prev=None):
            state = h_prev.unsqueeze(0)
            if kind == "lstm":
                state = (state, C_prev.unsqueeze(0))
            _, last = encoder(x, state)
            hs, _ = decoder(y_prev, last)
            return {"h": hs, "y": output(hs)["y"]}
        return fn
    return build


BUILDERS = {"rnn.output": output_builder}
for _kind in CELLS:
    BUILDERS[f"{_kind}.cell"] = cell_builder(_kind)
    BUILDERS[f"{_kind}.layers"] = layers_builder(_kind)
    BUILDERS[f"{_kind}.layers_padded"] = layers_builder(_kind, padded=True)
    BUILDERS[f"{_kind}.seq2seq"] = seq2seq_builder(_kind)

OPTIONS, BUILDERS, DECLARATIONS = torch_compiled.with_compiled(
    {**{f"{kind}.{layers}": {"batch_first": [True, False]} for kind in CELLS for layers in ("layers", "layers_padded")},
     **torch_attention.OPTIONS, **torch_transformer.OPTIONS},
    {**BUILDERS, **torch_attention.BUILDERS, **torch_transformer.BUILDERS},
    {**torch_attention.DECLARATIONS, **torch_transformer.DECLARATIONS})

SUBJECT = Subject(
    name="torch",
    version=torch.__version__,
    builders=BUILDERS,
    variants={"gru.cell": "gru.reset_after", "gru.layers": "gru.reset_after", "gru.layers_padded": "gru.reset_after",
              "gru.seq2seq": "gru.reset_after", **torch_attention.VARIANTS, **torch_transformer.VARIANTS},
    options=OPTIONS,
    declarations=DECLARATIONS,
)
