"""Benchmark: the compiled oracle against hand-written float64 NumPy and torch float64.

    python benchmarks/oracle.py            # LSTM and GRU at batch 8, seq 128, hidden 256 (the oracle's fused
                                           # form, spec/fused_cells.py, and the article's equations step by step);
                                           # attention and MHA at batch 8, seq 128, d_model 512, 8 heads
    python benchmarks/oracle.py --suite    # also the wall time of the default suite with -n 2

One thread for everyone (threadpoolctl, torch.set_num_threads), CPU time of the process; the cells' ratios are medians of
ratios taken back to back, the attention rows best of 5 runs.
"""
import argparse
import subprocess
import sys
import time
import timeit

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from nlpspec.spec import attention as spec_attention
from nlpspec.spec.architectures import unroll
from nlpspec.spec.oracle import compile_equation

B, T, H = 8, 128, 256  # input size = hidden size
ROUNDS = 9  # the machine may be shared: ratios of timings taken back to back, their median
D_MODEL, HEADS = 512, 8


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def numpy_lstm(p, xs, h, C):
    """Hand-written: the article's LSTM with row vectors, one product per gate."""
    for t in range(xs.shape[1]):
        hx = np.concatenate([h, xs[:, t]], -1)
        f, i, o = (sigmoid(hx @ p[f"W_{g}"].T + p[f"b_{g}"]) for g in "fio")
        C = f * C + i * np.tanh(hx @ p["W_C"].T + p["b_C"])
        h = o * np.tanh(C)
    return h


def numpy_gru(p, xs, h):
    for t in range(xs.shape[1]):
        hx = np.concatenate([h, xs[:, t]], -1)
        r, z = (sigmoid(hx @ p[f"W_{g}"].T + p[f"b_{g}"]) for g in "rz")
        n = np.tanh(np.concatenate([r * h, xs[:, t]], -1) @ p["W_h"].T + p["b_h"])
        h = (1 - z) * h + z * n
    return h


def softmax_rows(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numpy_attention(q, k, v, hidden):
    scores = np.where(hidden, -np.inf, q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]))
    return softmax_rows(scores) @ v


def numpy_mha(x, p, hidden):
    heads = [numpy_attention(x @ p["W_Q"][h] + p["b_Q"][h], x @ p["W_K"][h] + p["b_K"][h], x @ p["W_V"][h] + p["b_V"][h],
                             hidden) for h in range(len(p["W_Q"]))]
    return np.concatenate(heads, -1) @ p["W_O"] + p["b_O"]


def attention_rows(rng):
    """Self-attention and MHA at B, T, D_MODEL, HEADS: (name, oracle, numpy, torch) timings."""
    x = rng.standard_normal((B, T, D_MODEL))
    hidden = spec_attention.hidden_keys(T, T, causal=True)  # a causal mask, given as B_mask
    d_k = D_MODEL // HEADS
    W_Q, W_K, W_V = (rng.standard_normal((HEADS, D_MODEL, d_k)) / np.sqrt(D_MODEL) for _ in range(3))
    W_O = rng.standard_normal((D_MODEL, D_MODEL)) / np.sqrt(D_MODEL)
    p = {"W_Q": W_Q, "W_K": W_K, "W_V": W_V, "W_O": W_O, "b_O": rng.standard_normal(D_MODEL) * 0.1,
         **{b: rng.standard_normal((HEADS, d_k)) * 0.1 for b in ("b_Q", "b_K", "b_V")}}
    given = compile_equation(spec_attention.MASK_GIVEN)
    tx, tmask = torch.from_numpy(x), torch.from_numpy(~hidden)
    module = torch.nn.MultiheadAttention(D_MODEL, HEADS, batch_first=True).double().eval()
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.cat([torch.from_numpy(W.transpose(0, 2, 1).reshape(D_MODEL, D_MODEL))
                                               for W in (W_Q, W_K, W_V)]))
        module.in_proj_bias.copy_(torch.from_numpy(np.concatenate([p[b].reshape(-1) for b in ("b_Q", "b_K", "b_V")])))
        module.out_proj.weight.copy_(torch.from_numpy(W_O.T))
        module.out_proj.bias.copy_(torch.from_numpy(p["b_O"]))
        rows = []
        runs = {"attention": (lambda: given(Q=x, K=x, V=x, B_mask=hidden), lambda: numpy_attention(x, x, x, hidden),
                              lambda: torch.nn.functional.scaled_dot_product_attention(tx, tx, tx, attn_mask=tmask)),
                "mha": (lambda: spec_attention.multi_head(p, x, x, x, hidden)["O"],
                        lambda: numpy_mha(x, p, hidden),
                        lambda: module(tx, tx, tx, attn_mask=torch.from_numpy(hidden), need_weights=False)[0])}
        for name, (oracle, hand, native) in runs.items():
            np.testing.assert_allclose(oracle(), hand(), atol=1e-10)  # the same function
            np.testing.assert_allclose(native().numpy(), hand(), atol=1e-10)
            rows.append((name, best(oracle), best(hand), best(native)))
    return rows


def best(fn, repeat=5):
    """The least CPU time of the process over `repeat` runs: on a shared machine another job delays a run
    without lengthening it (one thread everywhere, so the process's CPU time is the run's)."""
    fn()
    return min(timeit.repeat(fn, number=1, repeat=repeat, timer=time.process_time))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", action="store_true", help="also time `pytest -n 2` (the default suite)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((B, T, H)) * 0.5
    h0, C0 = np.zeros((B, H)), np.zeros((B, H))
    print(f"batch {B}, seq {T}, hidden {H}, float64, 1 thread; seconds, median of {ROUNDS} rounds, each timing "
          "every column back to back (best of 3); the ratios are the medians of each round's ratio")
    print(f"{'cell':<6}{'oracle':>10}{'steps':>10}{'numpy':>10}{'torch':>10}{'oracle/torch':>14}{'steps/torch':>13}")
    with threadpool_limits(1):
        for kind, gates in (("lstm", "fiCo"), ("gru", "rzh")):
            p = {f"W_{g}": rng.standard_normal((H, 2 * H)) / np.sqrt(2 * H) for g in gates}
            p |= {f"b_{g}": rng.standard_normal(H) * 0.1 for g in gates}
            cols = {k: v[:, None] if v.ndim == 1 else v for k, v in p.items()}
            state = {"h": h0[..., None]} | ({"C": C0[..., None]} if kind == "lstm" else {})
            oracle = lambda: unroll(kind, cols, xs[..., None], state)  # noqa: E731
            steps = lambda: unroll(kind, cols, xs[..., None], state, fused=False)  # noqa: E731
            hand = (lambda: numpy_lstm(p, xs, h0, C0)) if kind == "lstm" else (lambda: numpy_gru(p, xs, h0))
            module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(H, H, batch_first=True).double().eval()
            tx = torch.from_numpy(xs)
            with torch.no_grad():
                rounds = np.array([[best(fn, 3) for fn in (oracle, steps, hand, lambda: module(tx))]
                                   for _ in range(ROUNDS)])
            np.testing.assert_allclose(oracle()[1]["h"][..., 0], hand(), atol=1e-10)  # same function
            np.testing.assert_allclose(steps()[1]["h"][..., 0], hand(), atol=1e-10)
            times = np.median(rounds, axis=0)
            fused, plain = (np.median(rounds[:, k] / rounds[:, 3]) for k in (0, 1))
            print(f"{kind:<6}" + "".join(f"{t:>10.4f}" for t in times) + f"{fused:>14.2f}{plain:>13.2f}")
        print(f"\nbatch {B}, seq {T}, d_model {D_MODEL}, {HEADS} heads, causal mask, float64, 1 thread; best of 5")
        print(f"{'':<10}{'oracle':>10}{'numpy':>10}{'torch':>10}{'oracle/torch':>14}")
        for name, *times in attention_rows(rng):
            print(f"{name:<10}{times[0]:>10.4f}{times[1]:>10.4f}{times[2]:>10.4f}{times[0] / times[2]:>14.2f}")
    if args.suite:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--hypothesis-profile", "ci"],
                              capture_output=True, text=True)
        tail = [line for line in done.stdout.splitlines() if " in " in line and ("passed" in line or "failed" in line)]
        print(f"default suite, pytest -n 2, ci profile: {time.perf_counter() - start:.1f} s wall  ({tail[-1] if tail else done.returncode})")


if __name__ == "__main__":
    main()
