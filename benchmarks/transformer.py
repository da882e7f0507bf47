"""Benchmark: the compiled oracle against hand-written float64 NumPy and torch float64 for an encoder
layer, a decoder layer and the whole model (batch 8, seq 128, d_model 512, 8 heads, d_ff 2048,
2 layers each, vocabulary 1000).

    python benchmarks/transformer.py

One thread for everyone (threadpoolctl, torch.set_num_threads), best of 3 runs.
"""
import timeit

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from nlpspec.properties.transformer.components import rows  # the subject's 1-D biases as the spec's 1×d rows
from nlpspec.spec import transformer as spec
from nlpspec.subjects import torch_transformer as tt

B, T, D, HEADS, FF, LAYERS, V = 8, 128, 512, 8, 2048, 2, 1000


def layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return g * (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) + b


def softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha(p, q, kv, hidden=None):
    heads = []
    for h in range(len(p["W_Q"])):
        s = (q @ p["W_Q"][h] + p["b_Q"][h]) @ np.swapaxes(kv @ p["W_K"][h] + p["b_K"][h], -1, -2) \
            / np.sqrt(p["W_Q"].shape[-1])
        if hidden is not None:
            s = np.where(hidden, -np.inf, s)
        heads.append(softmax(s) @ (kv @ p["W_V"][h] + p["b_V"][h]))
    return np.concatenate(heads, -1) @ p["W_O"] + p["b_O"]


def ffn(p, z):
    return np.maximum(z @ p["W_1"] + p["b_1"], 0) @ p["W_2"] + p["b_2"]


def numpy_encoder_layer(p, x):
    z = layer_norm(x + mha(p["attn"], x, x), p["gamma_1"], p["beta_1"])
    return layer_norm(z + ffn(p, z), p["gamma_2"], p["beta_2"])


def numpy_decoder_layer(p, y, memory):
    causal = np.triu(np.ones((y.shape[1], y.shape[1]), bool), 1)
    a = layer_norm(y + mha(p["self_attn"], y, y, causal), p["gamma_1"], p["beta_1"])
    b = layer_norm(a + mha(p["cross_attn"], a, memory), p["gamma_2"], p["beta_2"])
    return layer_norm(b + ffn(p, b), p["gamma_3"], p["beta_3"])


def numpy_positions(n, d):
    i, pair = np.arange(n)[:, None], np.arange(d) // 2
    angle = i / 10000 ** (2 * pair / d)
    return np.where(np.arange(d) % 2 == 0, np.sin(angle), np.cos(angle))


def numpy_model(p, src, tgt):
    x = p["src_embedding"][src] + numpy_positions(src.shape[1], D)
    for layer in p["encoder"]["layers"]:
        x = numpy_encoder_layer(layer, x)
    y = p["tgt_embedding"][np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], 1)] + numpy_positions(tgt.shape[1], D)
    for layer in p["decoder"]["layers"]:
        y = numpy_decoder_layer(layer, y, x)
    return softmax(y @ p["W_c"] + p["b_c"])


def params(rng, attentions, norms):
    d_k = D // HEADS
    mha_p = lambda: {"W_Q": rng.standard_normal((HEADS, D, d_k)) / np.sqrt(D),  # noqa: E731
                     "W_K": rng.standard_normal((HEADS, D, d_k)) / np.sqrt(D),
                     "W_V": rng.standard_normal((HEADS, D, d_k)) / np.sqrt(D),
                     "W_O": rng.standard_normal((D, D)) / np.sqrt(D),
                     **{b: rng.standard_normal((HEADS, d_k)) * 0.1 for b in ("b_Q", "b_K", "b_V")},
                     "b_O": rng.standard_normal(D) * 0.1}
    p = {a: mha_p() for a in attentions}
    p |= {"W_1": rng.standard_normal((D, FF)) / np.sqrt(D), "b_1": rng.standard_normal(FF) * 0.1,
          "W_2": rng.standard_normal((FF, D)) / np.sqrt(FF), "b_2": rng.standard_normal(D) * 0.1}
    for k in range(1, norms + 1):
        p |= {f"gamma_{k}": 1 + rng.standard_normal(D) * 0.1, f"beta_{k}": rng.standard_normal(D) * 0.1}
    return p


def tensors(tree):
    if isinstance(tree, dict):
        return {k: tensors(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [tensors(v) for v in tree]
    return torch.from_numpy(tree)


def best(fn, repeat=3):
    fn()
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x, memory = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
    enc, dec = params(rng, ("attn",), 2), params(rng, ("self_attn", "cross_attn"), 3)
    model = {"src_embedding": rng.standard_normal((V, D)), "tgt_embedding": rng.standard_normal((V, D)),
             "encoder": {"layers": [params(rng, ("attn",), 2) for _ in range(LAYERS)]},
             "decoder": {"layers": [params(rng, ("self_attn", "cross_attn"), 3) for _ in range(LAYERS)]},
             "W_c": rng.standard_normal((D, V)) / np.sqrt(D), "b_c": np.zeros(V)}
    src, tgt = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    no_padding = np.zeros((B, T), bool)

    enc_module = tt.encoder_layer_builder(tensors(enc))
    dec_module = tt.decoder_layer_builder(tensors(dec))
    enc_stack = tt.encoder_builder(tensors(model["encoder"]))
    dec_stack = tt.decoder_builder(tensors(model["decoder"]))
    P = torch.from_numpy(numpy_positions(T, D))

    def torch_model():
        e = enc_stack(torch.from_numpy(model["src_embedding"])[torch.from_numpy(src)] + P, torch.from_numpy(no_padding))
        t = torch.from_numpy(tgt)
        shifted = torch.cat([torch.zeros_like(t[:, :1]), t[:, :-1]], 1)
        d = dec_stack(torch.from_numpy(model["tgt_embedding"])[shifted] + P, e)
        return torch.softmax(d @ torch.from_numpy(model["W_c"]) + torch.from_numpy(model["b_c"]), -1)

    runs = {
        "encoder layer": (lambda: spec.encoder_layer(rows(enc), x, no_padding)["E"],
                          lambda: numpy_encoder_layer(enc, x),
                          lambda: enc_module(torch.from_numpy(x), torch.from_numpy(no_padding))),
        "decoder layer": (lambda: spec.decoder_layer(rows(dec), x, memory)["D"],
                          lambda: numpy_decoder_layer(dec, x, memory),
                          lambda: dec_module(torch.from_numpy(x), torch.from_numpy(memory))),
        "model": (lambda: spec.model(rows(model), src, tgt, no_padding)["p"],
                  lambda: numpy_model(model, src, tgt),
                  torch_model),
    }
    print(f"batch {B}, seq {T}, d_model {D}, {HEADS} heads, d_ff {FF}, {LAYERS}+{LAYERS} layers, float64, 1 thread; "
          f"best of 3, seconds")
    print(f"{'':<15}{'oracle':>10}{'numpy':>10}{'torch':>10}{'oracle/torch':>14}")
    with threadpool_limits(1), torch.no_grad():
        for name, (oracle, hand, native) in runs.items():
            np.testing.assert_allclose(oracle(), hand(), atol=1e-9)  # the same function
            np.testing.assert_allclose(native().numpy(), hand(), atol=1e-9)
            times = best(oracle), best(hand), best(native)
            print(f"{name:<15}{times[0]:>10.3f}{times[1]:>10.3f}{times[2]:>10.3f}{times[0] / times[2]:>14.2f}")


if __name__ == "__main__":
    main()
