"""PyTorch's attention as subject "torch" (with subjects/torch_nn.py): nn.MultiheadAttention and
F.scaled_dot_product_attention, fed the spec's parameters.

- attention: F.scaled_dot_product_attention with a boolean mask, True where a query may attend
  (the variant mask.bool_true_attends); with mask_dtype="float" the adapter turns it into an additive
  float mask (0 or -inf) and SDPA takes its float path. With backend="math" or "flash_attention"
  the call runs under `torch.nn.attention.sdpa_kernel` with that backend only (heads axis added, as
  the flash kernel needs 4-D inputs); "default" lets PyTorch pick. PyTorch's flash kernel needs the
  value width d_v to equal d_k: the option set declares that it lacks value_width. The
  efficient_attention and cudnn_attention sets run on CUDA only (declared: skipped on the CPU).
- attention.causal: F.scaled_dot_product_attention(is_causal=True), aligned at the upper left, under
  each backend as attention's.
- attn.seq2seq: F.scaled_dot_product_attention(S, H, H); its scale 1/√d_h is the article's.
- mha: nn.MultiheadAttention, whose masks are booleans, True where a key is hidden (the variant
  mask.bool_true_masked). The spec's per-head W_Q[h] (d_model×d_k, acting on the right) is rows
  h·d_k … (h+1)·d_k - 1 of q_proj_weight, transposed; with key and value widths equal to d_model
  the three go into the packed in_proj_weight, else into q/k/v_proj_weight; out_proj.weight is
  W_O transposed; in_proj_bias is b_Q, b_K, b_V (each head's row in turn), out_proj.bias b_O. Modes: batch_first (per-head weights), seq_first (batch_first=False, weights
  averaged over heads), fast_path (eval, torch.no_grad: when query, key and value
  are equal and the heads even, one tensor is passed three times, which is what lets PyTorch
  take its native fast path; other cases run the ordinary path under the same settings).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torch.nn.attention import SDPBackend, sdpa_kernel

from .protocol import Declaration
from .glue import additive, assign, per_head_rows


CUDA_BACKENDS = ("efficient_attention", "cudnn_attention")


def sdpa(q, k, v, backend="default", **kw):
    """F.scaled_dot_product_attention under one backend only (`torch.nn.attention.sdpa_kernel`; the
    kernels take 4-D inputs, so 3-D ones get a heads axis), or under PyTorch's pick ("default")."""
    if backend == "default":
        return F.scaled_dot_product_attention(q, k, v, **kw)
    if q.dim() == 3:
        if kw.get("attn_mask") is not None:
            kw["attn_mask"] = kw["attn_mask"][:, None]
        return sdpa(q[:, None], k[:, None], v[:, None], backend, **kw)[:, 0]
    with sdpa_kernel(getattr(SDPBackend, backend.upper())):
        return F.scaled_dot_product_attention(q, k, v, **kw)


def backend_declaration(backend: str, value_width: bool = True) -> Declaration:
    """What an SDPA backend's option set declares: CUDA only for the memory-efficient and cuDNN
    kernels; for the flash kernel, no value width other than d_k (where the component draws one)."""
    if backend == "flash_attention" and value_width:
        return Declaration(lacks=("value_width",), note="PyTorch's flash kernel needs d_v = d_k")
    if backend in CUDA_BACKENDS:
        return Declaration(devices=("cuda",), note=f"PyTorch has no {backend} kernel for the CPU")
    return Declaration()


def attention_builder(params, mask_dtype="bool", backend="default"):
    def fn(q, k, v, mask):
        if mask_dtype == "float":  # additive: 0 where the boolean mask says "may attend", else -inf
            mask = additive(mask, q.dtype)
        return sdpa(q, k, v, backend, attn_mask=mask)
    return fn


def causal_builder(params, backend="default"):
    return lambda q, k, v: sdpa(q, k, v, backend, is_causal=True)


def seq2seq_attention_builder(params):
    return lambda S, H: {"context": F.scaled_dot_product_attention(S, H, H)}


def load_mha(module: nn.MultiheadAttention, params) -> nn.MultiheadAttention:
    """Copy the spec's per-head W_Q, W_K, W_V, W_O and the biases b_Q, b_K, b_V, b_O into a module."""
    q, k, v = per_head_rows(params["W_Q"]), per_head_rows(params["W_K"]), per_head_rows(params["W_V"])
    if module._qkv_same_embed_dim:
        assign(module.in_proj_weight, torch.cat([q, k, v]))
    else:
        assign(module.q_proj_weight, q)
        assign(module.k_proj_weight, k)
        assign(module.v_proj_weight, v)
    assign(module.out_proj.weight, params["W_O"].T)
    assign(module.in_proj_bias, torch.cat([params[b].reshape(-1) for b in ("b_Q", "b_K", "b_V")]))
    assign(module.out_proj.bias, params["b_O"])
    return module


def mha_module(params, batch_first=True) -> nn.MultiheadAttention:
    W_Q, W_K, W_V = params["W_Q"], params["W_K"], params["W_V"]
    heads, d_model = W_Q.shape[:2]
    module = nn.MultiheadAttention(d_model, heads, kdim=W_K.shape[1], vdim=W_V.shape[1],
                                   batch_first=batch_first, device=W_Q.device, dtype=W_Q.dtype)
    return load_mha(module, params).eval()


def mha_builder(params, mode="batch_first"):
    module = mha_module(params, batch_first=mode != "seq_first")

    def fn(query, key, value, attn_mask, key_padding_mask):
        if mode == "fast_path":
            same = query.shape == key.shape == value.shape and torch.equal(query, key) and torch.equal(key, value)
            with torch.no_grad():
                if same:
                    key = value = query
                out, _ = module(query, key, value, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                                need_weights=False)
            return {"out": out}
        if mode == "seq_first":
            out, weights = module(query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1),
                                  key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=True,
                                  average_attn_weights=True)
            return {"out": out.transpose(0, 1), "mean_weights": weights}
        out, weights = module(query, key, value, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                              need_weights=True, average_attn_weights=False)
        return {"out": out, "weights": weights}
    return fn


BUILDERS = {"attention": attention_builder, "attention.causal": causal_builder, "mha": mha_builder,
            "attn.seq2seq": seq2seq_attention_builder}
VARIANTS = {"attention": "mask.bool_true_attends", "mha": "mask.bool_true_masked"}
# SDPA's backends, each its own option set (a mask dtype each: both paths of the default); the
# memory-efficient and cuDNN kernels are CUDA's only, declared so (skipped on the CPU, with the reason)
BACKENDS = ("math", "flash_attention", *CUDA_BACKENDS)
OPTIONS = {"attention": {"bool": {"mask_dtype": "bool"}, "float": {"mask_dtype": "float"},
                         **{name: {"backend": name} for name in BACKENDS},
                         "flash_attention_float": {"backend": "flash_attention", "mask_dtype": "float"}},
           "attention.causal": {"default": {}, **{name: {"backend": name} for name in BACKENDS}},
           "mha": {"mode": ["batch_first", "seq_first", "fast_path"]}}
DECLARATIONS = {"attention": lambda options: backend_declaration(options.get("backend", "default")),
                "attention.causal": lambda options: backend_declaration(options.get("backend", "default"))}
