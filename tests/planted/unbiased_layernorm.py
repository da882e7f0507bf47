"""A LayerNorm that divides by d - 1 (torch.var's default, unbiased) instead of d: NaN for d = 1,
a wrong value elsewhere.

    pytest --pyargs nlpspec --subject tests.planted.unbiased_layernorm:SUBJECT -k layernorm
"""
import torch

from nlpspec import Subject

EPSILON = 1e-5


def layernorm(params):
    gamma, beta = params["gamma"], params["beta"]

    def fn(x):
        mean = x.mean(-1, keepdim=True)
        var = torch.var(x, dim=-1, keepdim=True)  # the bug: unbiased, divides by d - 1
        return gamma * (x - mean) / torch.sqrt(var + EPSILON) + beta
    return fn


SUBJECT = Subject(name="unbiased_layernorm", version="0.0.1", builders={"layernorm": layernorm})
