"""Keras 3 on its torch backend as subject "keras" (`pip install nlpspec[keras]`): its own layers,
built in the run's dtype, their weights assigned from the spec's parameters.

- lstm.cell, gru.cell: `LSTMCell`, `GRUCell`. Kernels are (inputs, k·H) acting on the right, gates
  in Keras' order (glue.GATE_ORDERS: i, f, c, o; z, r, h). `reset_after=False` is the article's GRU,
  whose update gate writes the candidate where Keras' keeps the old state (h = z h_prev + (1 - z) h̃):
  z is mapped with its sign flipped (σ(-a) = 1 - σ(a)). `reset_after=True` (Keras' default, cuDNN's)
  is the variant gru.reset_after, whose z keeps the state as Keras' does, with two bias rows: b_r and
  b_z split between them (glue.split_bias), b_in in the input row, b_hn in the recurrent one.
- lstm.layers, gru.layers: `LSTM` / `GRU` layers (return_sequences, return_state), one per layer
  and direction, the backward one with go_backwards=True and its outputs put back in time order
  (bidirectional="go_backwards"), or the two inside Keras' `Bidirectional` wrapper
  (bidirectional="wrapper", merge_mode="concat").
- mha: `MultiHeadAttention` (EinsumDense kernels (d_in, h, d_k), per-head biases), its boolean
  attention_mask True where a query may attend, made from the spec's mask and key padding.
- layernorm: `LayerNormalization`, whose ε is 1e-3 (declared).
"""
from __future__ import annotations

import os
import warnings

import torch

from .protocol import Declaration, Subject
from .glue import GATE_ORDERS, gate_rows, may_attend, split_bias
from .torch_nn import sizes

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported


def dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def assign(layer, values):
    for variable, value in zip(layer.weights, values):
        variable.assign(value)


def lstm_weights(p):
    """kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H,), gates i, f, c, o."""
    weight_ih, weight_hh = gate_rows([p[f"W_{g}"] for g in GATE_ORDERS["keras.lstm"]], p["W_f"].shape[0])
    return weight_ih.T, weight_hh.T, torch.cat([p[f"b_{g}"] for g in GATE_ORDERS["keras.lstm"]])


def gru_weights(p, reset_after):
    """kernel (I, 3H), recurrent_kernel (H, 3H), bias (3H,) or (2, 3H), gates z, r, h. Keras' z keeps the
    state, as gru.reset_after's does; the article's writes the candidate: Keras' z is its 1 - z."""
    H = p["W_r"].shape[0]
    W_z, b_z, W_r, b_r = p["W_z"], p["b_z"], p["W_r"], p["b_r"]
    if not reset_after:  # Keras' z keeps the state, the article's writes the candidate: σ(-a) = 1 - σ(a)
        weight_ih, weight_hh = gate_rows([-W_z, W_r, p["W_h"]], H)
        return weight_ih.T, weight_hh.T, torch.cat([-b_z, b_r, p["b_h"]])
    weight_ih, weight_hh = gate_rows([W_z, W_r], H)
    (z_in, z_rec), (r_in, r_rec) = split_bias(b_z), split_bias(b_r)
    return (torch.cat([weight_ih, p["W_in"]]).T, torch.cat([weight_hh, p["W_hn"]]).T,
            torch.stack([torch.cat([z_in, r_in, p["b_in"]]), torch.cat([z_rec, r_rec, p["b_hn"]])]))


def cell_builder(kind):
    def build(params, reset_after=True):
        import keras
        I, H = sizes(kind, params)
        if kind == "lstm":
            cell, weights = keras.layers.LSTMCell(H, dtype=dtype_name(params["W_f"])), lstm_weights(params)
        else:
            cell = keras.layers.GRUCell(H, reset_after=reset_after, dtype=dtype_name(params["W_r"]))
            weights = gru_weights(params, reset_after)
        cell.build((None, I))
        assign(cell, weights)

        def fn(x, h_prev, C_prev=None):
            h, states = cell(x, [h_prev, C_prev] if kind == "lstm" else [h_prev])
            return {"h": h, "C": states[1]} if kind == "lstm" else {"h": h}
        return fn
    return build


def layers_builder(kind):
    def build(params, reset_after=True, bidirectional="go_backwards"):
        import keras
        made = []
        for directions in params["layers"]:
            row, weights = [], []
            for d, p in enumerate(directions):
                I, H = sizes(kind, p)
                dtype = dtype_name(next(iter(p.values())))
                if kind == "lstm":
                    layer = keras.layers.LSTM(H, return_sequences=True, return_state=True, go_backwards=d == 1,
                                              dtype=dtype)
                else:
                    layer = keras.layers.GRU(H, return_sequences=True, return_state=True, go_backwards=d == 1,
                                             reset_after=reset_after, dtype=dtype)
                row.append(layer)
                weights.append(lstm_weights(p) if kind == "lstm" else gru_weights(p, reset_after))
            if bidirectional == "wrapper" and len(row) == 2:  # Keras' Bidirectional around the two (it copies
                wrapper = keras.layers.Bidirectional(row[0], backward_layer=row[1], merge_mode="concat", dtype=dtype)
                wrapper.build((None, None, I))                # them: the weights go to its copies)
                row, layers = [wrapper], [wrapper.forward_layer, wrapper.backward_layer]
            else:
                layers = row
                for layer in row:
                    layer.build((None, None, I))
            for layer, values in zip(layers, weights):
                assign(layer, values)
            made.append(row)

        def fn(x, h_prev, C_prev=None):
            h_out, C_out = [], []
            for l, row in enumerate(made):
                outs, hs, Cs = [], [], []
                if isinstance(row[0], keras.layers.Bidirectional):
                    per = 2 if kind == "lstm" else 1  # states per direction
                    state = [s[:, l, d] for d in range(2) for s in ([h_prev, C_prev] if kind == "lstm" else [h_prev])]
                    x, *finals = row[0](x, initial_state=state)  # its backward half back in time order
                    h_out.append(torch.stack([finals[0], finals[per]], 1))
                    C_out.append(torch.stack([finals[1], finals[3]], 1) if kind == "lstm" else None)
                    continue
                for d, layer in enumerate(row):
                    state = [h_prev[:, l, d], C_prev[:, l, d]] if kind == "lstm" else [h_prev[:, l, d]]
                    seq, *final = layer(x, initial_state=state)
                    outs.append(seq.flip(1) if d == 1 else seq)  # go_backwards: outputs in reversed time
                    hs.append(final[0])
                    if kind == "lstm":
                        Cs.append(final[1])
                x = torch.cat(outs, -1)
                h_out.append(torch.stack(hs, 1))
                C_out.append(torch.stack(Cs, 1) if Cs else None)
            found = {"out": x, "h": torch.stack(h_out, 1)}
            return found | ({"C": torch.stack(C_out, 1)} if kind == "lstm" else {})
        return fn
    return build


def mha_builder(params):
    import keras
    W_Q, W_K, W_V, W_O = params["W_Q"], params["W_K"], params["W_V"], params["W_O"]
    heads, d_model, d_k = W_Q.shape
    d_v = W_V.shape[2]
    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_k, value_dim=d_v, dtype=dtype_name(W_Q))
    n_query, n_key = (None, 1, d_model), (None, 1, W_K.shape[1])
    layer.build(n_query, (None, 1, W_V.shape[1]), n_key)
    by_name = {w.path.rsplit("/", 2)[-2] + "/" + w.path.rsplit("/", 1)[-1]: w for w in layer.weights}
    values = {"query/kernel": W_Q.permute(1, 0, 2), "query/bias": params["b_Q"],
              "key/kernel": W_K.permute(1, 0, 2), "key/bias": params["b_K"],
              "value/kernel": W_V.permute(1, 0, 2), "value/bias": params["b_V"],
              "attention_output/kernel": W_O.reshape(heads, d_v, d_model), "attention_output/bias": params["b_O"]}
    for name, value in values.items():
        by_name[name].assign(value)

    def fn(query, key, value, attn_mask, key_padding_mask):
        attends = may_attend(attn_mask, key_padding_mask)
        with warnings.catch_warnings():  # one key (m = 1) is a case the suite draws on purpose
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            out, weights = layer(query, value, key, attention_mask=attends, return_attention_scores=True)
        return {"out": out, "weights": weights}
    return fn


KERAS_EPSILON = 1e-3  # LayerNormalization's default


def layernorm_builder(params):
    import keras
    gamma = params["gamma"]
    layer = keras.layers.LayerNormalization(epsilon=KERAS_EPSILON, dtype=dtype_name(gamma))
    layer.build((None, gamma.shape[0]))
    assign(layer, (gamma, params["beta"]))
    return lambda x: layer(x)


def gru_variant(options):
    return "gru.reset_after" if options.get("reset_after", True) else None


def subject() -> Subject:
    """The subject (importing keras only here: `pip install nlpspec[keras]`)."""
    import keras
    return Subject(
        name="keras", version=keras.__version__,
        builders={"lstm.cell": cell_builder("lstm"), "gru.cell": cell_builder("gru"),
                  "lstm.layers": layers_builder("lstm"), "gru.layers": layers_builder("gru"), "mha": mha_builder,
                  "layernorm": layernorm_builder},
        variants={"gru.cell": gru_variant, "gru.layers": gru_variant, "mha": "mask.bool_true_masked"},
        options={"gru.cell": {"reset_after": [True, False]},
                 "gru.layers": {"reset_after": [True, False], "bidirectional": ["go_backwards", "wrapper"]},
                 "lstm.layers": {"bidirectional": ["go_backwards", "wrapper"]}},
        declarations={"layernorm": Declaration(constants={"layernorm.epsilon": KERAS_EPSILON})})
