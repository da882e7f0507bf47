"""PyTorch's Transformer layers as subject "torch" (with subjects/torch_nn.py), fed the spec's
parameters: nn.LayerNorm, nn.RMSNorm (rmsnorm, an extension of the article's), a Linear-ReLU-Linear
FFN, nn.TransformerEncoderLayer and nn.TransformerDecoderLayer (dropout 0, eval mode), and
softmax(F.linear) as the classifier.

A layer's attention weights and biases load as in subjects/torch_attention.py; linear1.weight is W_1
transposed (W_1 acts on the right in the spec), linear2.weight W_2 transposed; norm_k holds gamma_k
and beta_k. The builders take PyTorch's own knobs (norm_first, activation, batch_first; no_grad;
final_norm for the stacks), run as named option sets (SETS): post_ln (the article), pre_ln
(norm_first=True: the variants *.pre_ln), gelu (activation="gelu": ffn.gelu), seq_first
(batch_first=False), and, for the encoder, fast_path (eval under torch.no_grad(), which lets PyTorch
run its fused encoder layer when the heads are even); for the stacks, pre_ln_final_norm (pre-LN
layers and the stack's own final LayerNorm, `norm=`: the variant stack.final_norm, as GPT-2's ln_f). The key padding mask is boolean, True where hidden (the
variant mask.bool_true_masked); the decoder's causal mask is the square subsequent mask PyTorch
makes.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .glue import assign, per_head_rows
from .protocol import Declaration
from .torch_attention import BACKENDS, backend_declaration, load_mha, mha_module, sdpa

# knobs that go together, as named option sets (Subject.options); unnamed knobs keep their defaults
SETS = {"post_ln": {}, "pre_ln": {"norm_first": True}, "gelu": {"activation": "gelu"},
        "seq_first": {"batch_first": False}, "fast_path": {"no_grad": True},
        "pre_ln_final_norm": {"norm_first": True, "final_norm": True}}


def sets(*names):
    return {name: SETS[name] for name in names}


MODES = ("post_ln", "pre_ln", "gelu", "seq_first")


def load_ffn(linear1: nn.Linear, linear2: nn.Linear, params):
    assign(linear1.weight, params["W_1"].T)
    assign(linear1.bias, params["b_1"])
    assign(linear2.weight, params["W_2"].T)
    assign(linear2.bias, params["b_2"])


def load_norm(norm: nn.LayerNorm, params, k):
    assign(norm.weight, params[f"gamma_{k}"])
    assign(norm.bias, params[f"beta_{k}"])


def layer(cls, params, attention, norm_first, activation, batch_first):
    W_Q = params[attention]["W_Q"]
    heads, d_model, _ = W_Q.shape
    module = cls(d_model, heads, dim_feedforward=params["W_1"].shape[1], dropout=0.0, activation=activation,
                 batch_first=batch_first, norm_first=norm_first, device=W_Q.device, dtype=W_Q.dtype)
    load_ffn(module.linear1, module.linear2, params)
    return module.eval()


def encoder_layer_module(params, norm_first, activation, batch_first):
    module = layer(nn.TransformerEncoderLayer, params, "attn", norm_first, activation, batch_first)
    load_mha(module.self_attn, params["attn"])
    load_norm(module.norm1, params, 1)
    load_norm(module.norm2, params, 2)
    return module


def decoder_layer_module(params, norm_first, activation, batch_first):
    module = layer(nn.TransformerDecoderLayer, params, "self_attn", norm_first, activation, batch_first)
    load_mha(module.self_attn, params["self_attn"])
    load_mha(module.multihead_attn, params["cross_attn"])
    for k in (1, 2, 3):
        load_norm(getattr(module, f"norm{k}"), params, k)
    return module


def encoding(module, batch_first, no_grad):
    def fn(x, key_padding_mask):
        if not batch_first:
            return module(x.transpose(0, 1), src_key_padding_mask=key_padding_mask).transpose(0, 1)
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            return module(x, src_key_padding_mask=key_padding_mask)
    return fn


def decoding(module, batch_first):
    def fn(y, memory):
        causal = nn.Transformer.generate_square_subsequent_mask(y.shape[1], device=y.device, dtype=y.dtype)
        if not batch_first:
            return module(y.transpose(0, 1), memory.transpose(0, 1), tgt_mask=causal,
                          tgt_is_causal=True).transpose(0, 1)
        return module(y, memory, tgt_mask=causal, tgt_is_causal=True)
    return fn


def encoder_layer_builder(params, norm_first=False, activation="relu", batch_first=True, no_grad=False):
    return encoding(encoder_layer_module(params, norm_first, activation, batch_first), batch_first, no_grad)


def decoder_layer_builder(params, norm_first=False, activation="relu", batch_first=True):
    return decoding(decoder_layer_module(params, norm_first, activation, batch_first), batch_first)


def stack_norm(params, final_norm):
    """The stack's last LayerNorm (`norm=`), loaded from params["norm"], or None."""
    if not final_norm:
        return None
    gamma = params["norm"]["gamma_1"]
    norm = nn.LayerNorm(gamma.shape[0], device=gamma.device, dtype=gamma.dtype)
    load_norm(norm, params["norm"], 1)
    return norm


def encoder_builder(params, norm_first=False, activation="relu", batch_first=True, no_grad=False, final_norm=False):
    """nn.TransformerEncoder (its final norm with final_norm): its deep-copied layers are loaded one
    by one."""
    layers, knobs = params["layers"], (norm_first, activation, batch_first)
    module = nn.TransformerEncoder(encoder_layer_module(layers[0], *knobs), len(layers),
                                   norm=stack_norm(params, final_norm), enable_nested_tensor=False)
    for k, p in enumerate(layers):
        module.layers[k] = encoder_layer_module(p, *knobs)
    return encoding(module.eval(), batch_first, no_grad)


def decoder_builder(params, norm_first=False, activation="relu", batch_first=True, final_norm=False):
    layers, knobs = params["layers"], (norm_first, activation, batch_first)
    module = nn.TransformerDecoder(decoder_layer_module(layers[0], *knobs), len(layers),
                                   norm=stack_norm(params, final_norm))
    for k, p in enumerate(layers):
        module.layers[k] = decoder_layer_module(p, *knobs)
    return decoding(module.eval(), batch_first)


def ffn_builder(params):
    d_model, d_ff = params["W_1"].shape
    kw = {"device": params["W_1"].device, "dtype": params["W_1"].dtype}
    module = nn.Sequential(nn.Linear(d_model, d_ff, **kw), nn.ReLU(), nn.Linear(d_ff, d_model, **kw))
    load_ffn(module[0], module[2], params)
    return lambda z: module(z)


def layernorm_builder(params):
    module = nn.LayerNorm(params["gamma"].shape[0], device=params["gamma"].device, dtype=params["gamma"].dtype)
    load_norm(module, {"gamma_1": params["gamma"], "beta_1": params["beta"]}, 1)
    return lambda x: module(x)


# nn.RMSNorm's default eps=None is torch.finfo(dtype).eps, a different ε in every dtype: the builder passes
# the spec's default (LLaMA's) explicitly, and the subject declares it
RMS_EPSILON = 1e-6


def rmsnorm_builder(params):
    gamma = params["gamma"]
    module = nn.RMSNorm(gamma.shape[0], eps=RMS_EPSILON, device=gamma.device, dtype=gamma.dtype)
    assign(module.weight, gamma)
    return lambda x: module(x)


def classifier_builder(params):
    return lambda d: torch.softmax(F.linear(d, params["W_c"].T, params["b_c"]), dim=-1)


def switched(options, pre_ln):
    """The variants PyTorch's knobs switch on: the pre-LN forms, ffn.gelu, stack.final_norm."""
    return (pre_ln if options.get("norm_first") else ()) + \
        (("ffn.gelu",) if options.get("activation") == "gelu" else ()) + \
        (("stack.final_norm",) if options.get("final_norm") else ())


ENC_PRE_LN = ("enc.attn.pre_ln", "enc.ffn.pre_ln")
DEC_PRE_LN = ("dec.self.pre_ln", "dec.cross.pre_ln", "dec.ffn.pre_ln")


def encoder_variants(options):
    return switched(options, ENC_PRE_LN) + ("mask.bool_true_masked",)


def decoder_variants(options):
    return switched(options, DEC_PRE_LN)


def causal_mha_builder(params, mode="sdpa", backend="default"):
    """mha.causal. sdpa: nanoGPT's CausalSelfAttention (one packed Linear for q, k and v, the heads
    split by view and transpose, F.scaled_dot_product_attention(is_causal=True) under `backend`, a
    Linear out); module: nn.MultiheadAttention with the causal mask and is_causal=True."""
    W_Q = params["W_Q"]
    heads, d_model, d_k = W_Q.shape
    kw = {"device": W_Q.device, "dtype": W_Q.dtype}
    if mode == "module":
        module = mha_module(params)

        def fn(x):
            causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1], **kw) == -torch.inf
            out, weights = module(x, x, x, attn_mask=causal, is_causal=True, need_weights=True,
                                  average_attn_weights=False)
            return {"out": out, "weights": weights}
        return fn
    c_attn, c_proj = nn.Linear(d_model, 3 * d_model, **kw), nn.Linear(d_model, d_model, **kw)
    assign(c_attn.weight, torch.cat([per_head_rows(params[W]) for W in ("W_Q", "W_K", "W_V")]))
    assign(c_attn.bias, torch.cat([params[b].reshape(-1) for b in ("b_Q", "b_K", "b_V")]))
    assign(c_proj.weight, params["W_O"].T)
    assign(c_proj.bias, params["b_O"])

    def fn(x):
        B, T, C = x.shape
        q, k, v = c_attn(x).split(d_model, dim=2)
        q, k, v = (t.view(B, T, heads, C // heads).transpose(1, 2) for t in (q, k, v))
        y = sdpa(q, k, v, backend, is_causal=True)
        return {"out": c_proj(y.transpose(1, 2).contiguous().view(B, T, C))}
    return fn


def decoder_only_layer_builder(params, norm_first=False, activation="relu", batch_first=True):
    """decoder_only.layer: nn.TransformerEncoderLayer under the causal mask (is_causal=True), the
    GPT-style block PyTorch offers."""
    module = layer(nn.TransformerEncoderLayer, params, "self_attn", norm_first, activation, batch_first)
    load_mha(module.self_attn, params["self_attn"])
    load_norm(module.norm1, params, 1)
    load_norm(module.norm2, params, 2)

    def fn(x):
        causal = nn.Transformer.generate_square_subsequent_mask(x.shape[1], device=x.device, dtype=x.dtype)
        if not batch_first:
            return module(x.transpose(0, 1), src_mask=causal, is_causal=True).transpose(0, 1)
        return module(x, src_mask=causal, is_causal=True)
    return fn


def decoder_only_variants(options):
    return switched(options, ("dec.self.pre_ln", "enc.ffn.pre_ln"))


BUILDERS = {"layernorm": layernorm_builder, "rmsnorm": rmsnorm_builder, "ffn": ffn_builder,
            "encoder.layer": encoder_layer_builder, "decoder.layer": decoder_layer_builder, "classifier": classifier_builder,
            "encoder": encoder_builder, "decoder": decoder_builder, "mha.causal": causal_mha_builder,
            "decoder_only.layer": decoder_only_layer_builder}
VARIANTS = {"encoder.layer": encoder_variants, "decoder.layer": decoder_variants, "encoder": encoder_variants,
            "decoder": decoder_variants, "decoder_only.layer": decoder_only_variants}
OPTIONS = {"encoder.layer": sets(*MODES, "fast_path"), "decoder.layer": sets(*MODES),
           "mha.causal": {"sdpa": {"mode": "sdpa"}, **{f"sdpa_{name}": {"mode": "sdpa", "backend": name}
                                                         for name in BACKENDS}, "module": {"mode": "module"}},
           "decoder_only.layer": sets(*MODES),
           "encoder": sets(*MODES, "fast_path", "pre_ln_final_norm"), "decoder": sets(*MODES, "pre_ln_final_norm")}
# the packed projection's SDPA under each backend (the heads' value width is d_k: nothing to declare but the device)
DECLARATIONS = {"mha.causal": lambda options: backend_declaration(options.get("backend", "default"), value_width=False),
                "rmsnorm": Declaration(constants={"rmsnorm.epsilon": RMS_EPSILON})}


def tutorial_positions(n, d, dtype, device, work=None):
    """P as PyTorch's Transformer tutorial computes it (exp-log frequencies), in `work` (default:
    dtype). The tutorial itself works in float32: in a float64 run the suite reports that as a
    precision shortfall (about 25 of 53 bits; tests/test_variants.py), so the adapter uses dtype."""
    work = work or dtype
    position = torch.arange(n, device=device, dtype=work).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, device=device, dtype=work) * (-math.log(10000.0) / d))
    P = torch.zeros(n, d, device=device, dtype=work)
    P[:, 0::2] = torch.sin(position * div_term)
    P[:, 1::2] = torch.cos(position * div_term)[:, : d // 2]
    return P.to(dtype)


def pe_builder(params):
    def fn(x):
        P = tutorial_positions(x.shape[1], x.shape[2], x.dtype, x.device)
        return {"out": x + P, "P": P}
    return fn


def model_builder(params, norm_first=False, activation="relu", batch_first=True, no_grad=False):
    """nn.Transformer (with its final LayerNorms: stack.final_norm), the embeddings scaled by √d_model
    and the tutorial's P added (pe.scaled_input), ⟨bos⟩ = 0 shifted in, softmax(F.linear) on top;
    fast_path: under torch.no_grad(), where the encoder may run PyTorch's fused layers on a nested
    tensor (padded source positions dropped)."""
    enc, dec = params["encoder"]["layers"], params["decoder"]["layers"]
    W_Q = enc[0]["attn"]["W_Q"]
    heads, d_model, _ = W_Q.shape
    with warnings.catch_warnings():  # "enable_nested_tensor is True, but …": a note on speed, not on values
        warnings.simplefilter("ignore", UserWarning)
        module = nn.Transformer(d_model, heads, len(enc), len(dec), dim_feedforward=enc[0]["W_1"].shape[1],
                                dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first,
                                device=W_Q.device, dtype=W_Q.dtype)
    for k, p in enumerate(enc):
        module.encoder.layers[k] = encoder_layer_module(p, norm_first, activation, batch_first)
    for k, p in enumerate(dec):
        module.decoder.layers[k] = decoder_layer_module(p, norm_first, activation, batch_first)
    load_norm(module.encoder.norm, params["encoder_norm"], 1)
    load_norm(module.decoder.norm, params["decoder_norm"], 1)
    module.eval()

    def embed(table, ids):
        x = table[ids] * math.sqrt(d_model)
        return x + tutorial_positions(x.shape[1], d_model, x.dtype, x.device)

    def fn(src, tgt, src_key_padding_mask):
        shifted = torch.cat([torch.zeros_like(tgt[:, :1]), tgt[:, :-1]], dim=1)
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device, dtype=W_Q.dtype)
        x, y = embed(params["src_embedding"], src), embed(params["tgt_embedding"], shifted)
        if not batch_first:
            x, y = x.transpose(0, 1), y.transpose(0, 1)
        with torch.no_grad() if no_grad else contextlib.nullcontext(), warnings.catch_warnings():
            # the fast path's nested tensor: "… nested tensors is in prototype stage", a note on the API
            warnings.filterwarnings("ignore", "The PyTorch API of nested tensors", UserWarning)
            out = module(x, y, tgt_mask=causal, tgt_is_causal=True, src_key_padding_mask=src_key_padding_mask,
                         memory_key_padding_mask=src_key_padding_mask)
            if not batch_first:
                out = out.transpose(0, 1)
            return {"out": torch.softmax(F.linear(out, params["W_c"].T, params["b_c"]), dim=-1)}  # inference: no graph
    return fn


def model_variants(options):
    return switched(options, ENC_PRE_LN + DEC_PRE_LN) + ("stack.final_norm", "pe.scaled_input", "mask.bool_true_masked")


BUILDERS |= {"pe": pe_builder, "transformer": model_builder}
VARIANTS |= {"transformer": model_variants}
OPTIONS |= {"transformer": sets(*MODES, "fast_path")}
