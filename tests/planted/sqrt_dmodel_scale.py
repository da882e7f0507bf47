"""Multi-head attention that scales the scores by 1/√d_model instead of 1/√d_k (a common slip
when the heads are split after the scaling).

    pytest --pyargs nlpspec --subject tests.planted.sqrt_dmodel_scale:SUBJECT -k mha
"""
import math

import torch

from nlpspec import Subject


def mha(params):
    W_Q, W_K, W_V, W_O = params["W_Q"], params["W_K"], params["W_V"], params["W_O"]
    b_Q, b_K, b_V, b_O = params["b_Q"], params["b_K"], params["b_V"], params["b_O"]
    h = W_Q.shape[0]

    def project(x, W, b):  # (B, n, d_in) -> (B, h, n, d)
        return torch.einsum("bni,hid->bhnd", x, W) + b[None, :, None, :]

    def fn(query, key, value, attn_mask, key_padding_mask):
        d_model = query.shape[-1]
        q, k, v = project(query, W_Q, b_Q), project(key, W_K, b_K), project(value, W_V, b_V)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d_model)  # the bug: √d_k
        scores = scores + attn_mask + key_padding_mask[:, None, None, :]
        weights = torch.softmax(scores, dim=-1)
        heads = (weights @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
        return {"out": heads @ W_O + b_O, "weights": weights}
    return fn


SUBJECT = Subject(name="sqrt_dmodel_scale", version="0.0.1", builders={"mha": mha})
