"""Hugging Face transformers as subject "hf" (`pip install nlpspec[hf]`): its own modules, built from
their configs with random weights (never a hub download) and loaded with the spec's parameters.

- encoder.layer: BERT's `BertLayer` (post-LN, the exact erf GELU: the variant ffn.gelu), with BERT's
  own ε = 1e-12 declared. Its key padding reaches it as the mask the library builds itself
  (`masking_utils.create_bidirectional_mask` from a 0/1 attention mask); with masks="none" it gets
  no mask and declares that it lacks key padding.
- mha.causal: GPT-2's `GPT2Attention` (one Conv1D c_attn for q, k and v, weights (in, out) acting on
  the right, as the spec's), under the causal mask `create_causal_mask` builds: eager's float mask, sdpa's
  none (the kernel's own is_causal) and sdpa's materialized boolean mask, as named option sets.
- mha.causal, also: Qwen2's `Qwen2Attention` under its sliding window (the variant mask.sliding_window, the
  config's sliding_window = QWEN2_WINDOW declared as mask.window), under the mask
  `create_sliding_window_causal_mask` builds (eager: float; sdpa: none while every key is in the window,
  else boolean), as option sets qwen2_sliding_eager and qwen2_sliding_sdpa. Its rotary embedding, which the
  spec does not have, is made the identity (position embeddings cos = 1, sin = 0); o_proj has no bias
  (b_O declared absent); as many key-value heads as heads.
- decoder_only.layer: GPT-2's `GPT2Block` (pre-LN: dec.self.pre_ln, enc.ffn.pre_ln; its gelu_new is
  GELU's tanh approximation: ffn.gelu_tanh).
Every one under each attention implementation the CPU offers ("eager", "sdpa"): the option `attn`.
- rmsnorm: LLaMA's `LlamaRMSNorm` (T5's and Qwen's are the same function), built from a small LlamaConfig,
  ε = 1e-6 (its rms_norm_eps) declared. It normalises in float32 by design, so it declares the dtypes it
  runs in (float32, bfloat16, float16); undeclared, a float64 run reports a precision shortfall.
- pe: Marian's `MarianSinusoidalPositionalEmbedding` (all sines, then all cosines: the variant pe.concat),
  added to the input as MarianEncoder does (its `scale_embedding` is False by default).
"""
from __future__ import annotations

import torch

from .protocol import Declaration, Subject
from .glue import kept_tokens, per_head_rows, stack_heads

ATTENTION = ["eager", "sdpa"]
# GPT-2's mask paths, as named option sets: eager under its float mask, sdpa under none (is_causal), and
# sdpa under the boolean mask it materializes when it may not skip it
GPT2_SETS = {"eager": {"attn": "eager", "masks": "library"}, "sdpa": {"attn": "sdpa", "masks": "library"},
             "sdpa_materialized_mask": {"attn": "sdpa", "masks": "materialized"}}
QWEN2_WINDOW = 3  # Qwen2Config's sliding_window: the ci profile's sequences (1 … 5) reach past it
QWEN2_SETS = {"qwen2_sliding_eager": {"model": "qwen2", "attn": "eager"},
              "qwen2_sliding_sdpa": {"model": "qwen2", "attn": "sdpa"}}


def placed(module, like: torch.Tensor):
    return module.to(device=like.device, dtype=like.dtype).eval().requires_grad_(False)


def copy(target: torch.nn.Parameter, value: torch.Tensor):
    target.copy_(value)  # on autograd's tape (placed: the module's own need no grad), for the gradient check


# --- BERT ----------------------------------------------------------------------------------------
BERT_EPS = 1e-12  # BertConfig's layer_norm_eps


def bert_layer_builder(params, attn="eager", masks="library"):
    from transformers import BertConfig
    from transformers.masking_utils import create_bidirectional_mask
    from transformers.models.bert.modeling_bert import BertLayer

    p = params["attn"]
    heads, d_model, _ = p["W_Q"].shape
    config = BertConfig(hidden_size=d_model, num_attention_heads=heads, intermediate_size=params["W_1"].shape[1],
                        hidden_act="gelu", layer_norm_eps=BERT_EPS, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, attn_implementation=attn)
    layer = placed(BertLayer(config), p["W_Q"])
    attention = layer.attention
    for name, W, b in (("query", "W_Q", "b_Q"), ("key", "W_K", "b_K"), ("value", "W_V", "b_V")):
        copy(getattr(attention.self, name).weight, per_head_rows(p[W]))
        copy(getattr(attention.self, name).bias, p[b].reshape(-1))
    copy(attention.output.dense.weight, p["W_O"].T)
    copy(attention.output.dense.bias, p["b_O"])
    copy(attention.output.LayerNorm.weight, params["gamma_1"])
    copy(attention.output.LayerNorm.bias, params["beta_1"])
    copy(layer.intermediate.dense.weight, params["W_1"].T)
    copy(layer.intermediate.dense.bias, params["b_1"])
    copy(layer.output.dense.weight, params["W_2"].T)
    copy(layer.output.dense.bias, params["b_2"])
    copy(layer.output.LayerNorm.weight, params["gamma_2"])
    copy(layer.output.LayerNorm.bias, params["beta_2"])

    def fn(x, key_padding_mask):
        mask = None
        if masks == "library":  # BERT's attention_mask: 1 where a token is kept, 0 where it is padding
            mask = create_bidirectional_mask(config=config, inputs_embeds=x, attention_mask=kept_tokens(key_padding_mask))
        out = layer(x, attention_mask=mask)
        return out[0] if isinstance(out, tuple) else out
    return fn


def bert_declaration(options):
    lacks = ("key_padding",) if options.get("masks") == "none" else ()
    return Declaration(lacks=lacks, constants={"layernorm.epsilon": BERT_EPS})


# --- GPT-2 ---------------------------------------------------------------------------------------
def gpt2_config(p, d_ff, attn):
    from transformers import GPT2Config
    heads, d_model, _ = p["W_Q"].shape
    return GPT2Config(n_embd=d_model, n_head=heads, n_inner=d_ff, attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_implementation=attn)


def load_gpt2_attention(attention, p):
    """c_attn (Conv1D: x @ weight + bias, weight (d_model, 3·d_model)) holds W_Q, W_K, W_V, heads side by side."""
    copy(attention.c_attn.weight, torch.cat([stack_heads(p[W]) for W in ("W_Q", "W_K", "W_V")], dim=1))
    copy(attention.c_attn.bias, torch.cat([p[b].reshape(-1) for b in ("b_Q", "b_K", "b_V")]))
    copy(attention.c_proj.weight, p["W_O"])
    copy(attention.c_proj.bias, p["b_O"])


def causal_call(module, config, masks):
    """The module under the causal mask GPT2Model builds: masks="library" as it does by default (eager:
    an additive float mask; sdpa: none, the kernel's own is_causal), masks="materialized" as it does when
    it may not rely on is_causal (`allow_is_causal_skip=False`; sdpa: a boolean mask)."""
    from transformers.masking_utils import create_causal_mask

    def call(x):
        mask = create_causal_mask(config=config, inputs_embeds=x, attention_mask=None, cache=None,
                                  position_ids=torch.arange(x.shape[1], device=x.device)[None],
                                  allow_is_causal_skip=masks == "library")
        return module(x, attention_mask=mask)
    return call


def causal_attention_builder(params, attn="eager", masks="library", model="gpt2"):
    """mha.causal: GPT-2's attention, or (model="qwen2") Qwen2's under its sliding window."""
    return (qwen2_attention_builder if model == "qwen2" else gpt2_attention_builder)(params, attn, masks)


def gpt2_attention_builder(params, attn="eager", masks="library"):
    from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

    config = gpt2_config(params, 1, attn)
    attention = placed(GPT2Attention(config, layer_idx=0), params["W_Q"])
    load_gpt2_attention(attention, params)
    call = causal_call(attention, config, masks)

    def fn(x):
        out, weights = call(x)
        return {"out": out} if weights is None else {"out": out, "weights": weights}
    return fn


def gpt2_block_builder(params, attn="eager", masks="library"):
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    config = gpt2_config(params["self_attn"], params["W_1"].shape[1], attn)
    block = placed(GPT2Block(config, layer_idx=0), params["W_1"])
    load_gpt2_attention(block.attn, params["self_attn"])
    for k, norm in ((1, block.ln_1), (2, block.ln_2)):
        copy(norm.weight, params[f"gamma_{k}"])
        copy(norm.bias, params[f"beta_{k}"])
    copy(block.mlp.c_fc.weight, params["W_1"])
    copy(block.mlp.c_fc.bias, params["b_1"])
    copy(block.mlp.c_proj.weight, params["W_2"])
    copy(block.mlp.c_proj.bias, params["b_2"])
    call = causal_call(block, config, masks)

    def fn(x):
        out = call(x)
        return out[0] if isinstance(out, tuple) else out
    return fn


# --- LLaMA ---------------------------------------------------------------------------------------
LLAMA_EPS = 1e-6  # LlamaConfig's rms_norm_eps (T5's layer_norm_epsilon, Qwen2's rms_norm_eps)
LLAMA_FLOAT32 = ("LlamaRMSNorm normalises in float32 (hidden_states.to(torch.float32)) whatever the input's dtype: "
                 "in a float64 run it is a precision shortfall, tests/test_rmsnorm.py")


def llama_rmsnorm_builder(params):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    gamma = params["gamma"]
    config = LlamaConfig(hidden_size=gamma.shape[0], intermediate_size=2, num_hidden_layers=1, num_attention_heads=1,
                         num_key_value_heads=1, head_dim=2, vocab_size=4, rms_norm_eps=LLAMA_EPS)  # small and valid
    norm = placed(LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps), gamma)
    copy(norm.weight, gamma)
    return lambda x: norm(x)


# --- Qwen2 ---------------------------------------------------------------------------------------
def qwen2_attention_builder(params, attn="eager", masks="library"):
    from transformers import Qwen2Config
    from transformers.masking_utils import create_sliding_window_causal_mask
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention

    heads, d_model, d_k = params["W_Q"].shape
    config = Qwen2Config(hidden_size=d_model, num_attention_heads=heads, num_key_value_heads=heads, head_dim=d_k,
                         intermediate_size=1, num_hidden_layers=1, use_sliding_window=True,
                         sliding_window=QWEN2_WINDOW, max_window_layers=0, attention_dropout=0.0,
                         attn_implementation=attn)
    attention = placed(Qwen2Attention(config, layer_idx=0), params["W_Q"])
    for name, W, b in (("q_proj", "W_Q", "b_Q"), ("k_proj", "W_K", "b_K"), ("v_proj", "W_V", "b_V")):
        copy(getattr(attention, name).weight, per_head_rows(params[W]))
        copy(getattr(attention, name).bias, params[b].reshape(-1))
    copy(attention.o_proj.weight, params["W_O"].T)

    def fn(x):
        n = x.shape[1]
        mask = create_sliding_window_causal_mask(config=config, inputs_embeds=x, attention_mask=None, cache=None,
                                                 position_ids=torch.arange(n, device=x.device)[None])
        identity = (torch.ones(1, n, d_k, dtype=x.dtype, device=x.device),   # RoPE's cos and sin at every
                    torch.zeros(1, n, d_k, dtype=x.dtype, device=x.device))  # position: no rotation
        out, weights = attention(x, position_embeddings=identity, attention_mask=mask)
        return {"out": out} if weights is None else {"out": out, "weights": weights}
    return fn


def causal_attention_variant(options):
    return "mask.sliding_window" if options.get("model") == "qwen2" else None


QWEN2_FLOAT32 = ("Qwen2's eager_attention_forward takes the softmax in float32 (softmax(..., dtype=torch.float32)): "
                 "in a float64 run it is a precision shortfall, tests/test_hf.py")


def causal_attention_declaration(options):
    if options.get("model") != "qwen2":
        return Declaration()
    window = {"constants": {"mask.window": QWEN2_WINDOW}, "absent": ("b_O",)}
    if options.get("attn") == "eager":
        return Declaration(**window, dtypes=(torch.float32, torch.bfloat16, torch.float16), note=QWEN2_FLOAT32)
    return Declaration(**window)


# --- Marian --------------------------------------------------------------------------------------
MARIAN_FLOAT32 = ("Marian computes P in float32 (torch.FloatTensor in create_weight): in a float64 run it is a "
                  "precision shortfall, tests/test_hf.py")


def marian_pe_builder(params):
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    def fn(x):
        module = MarianSinusoidalPositionalEmbedding(x.shape[1], x.shape[2]).to(x.device)
        copy(module.weight, module.create_weight())  # what MarianPreTrainedModel._init_weights does
        module = placed(module, x)
        P = module(x.shape[:-1])
        return {"out": x + P, "P": P}
    return fn


def subject() -> Subject:
    """The subject (importing transformers only here: `pip install nlpspec[hf]`)."""
    import transformers
    return Subject(
        name="hf", version=transformers.__version__,
        builders={"encoder.layer": bert_layer_builder, "mha.causal": causal_attention_builder,
                  "decoder_only.layer": gpt2_block_builder, "pe": marian_pe_builder,
                  "rmsnorm": llama_rmsnorm_builder},
        variants={"encoder.layer": ("ffn.gelu", "mask.bool_true_masked"), "decoder_only.layer": ("dec.self.pre_ln", "enc.ffn.pre_ln", "ffn.gelu_tanh"),
                  "pe": "pe.concat", "mha.causal": causal_attention_variant},
        options={"encoder.layer": {"attn": ATTENTION, "masks": ["library", "none"]}, "mha.causal": {**GPT2_SETS, **QWEN2_SETS},
                 "decoder_only.layer": GPT2_SETS},
        declarations={"encoder.layer": bert_declaration, "mha.causal": causal_attention_declaration,
                      "decoder_only.layer": Declaration(constants={"layernorm.epsilon": 1e-5}),
                      "pe": Declaration(dtypes=(torch.float32, torch.bfloat16, torch.float16), note=MARIAN_FLOAT32),
                      "rmsnorm": Declaration(constants={"rmsnorm.epsilon": LLAMA_EPS},
                                             dtypes=(torch.float32, torch.bfloat16, torch.float16), note=LLAMA_FLOAT32)})
