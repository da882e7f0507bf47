"""Benchmark: the compiled oracle against hand-written float64 NumPy and torch float64.

    python benchmarks/oracle.py            # LSTM and GRU at batch 8, seq 128, hidden 256
    python benchmarks/oracle.py --suite    # also the wall time of the default suite with -n 2

One thread for everyone (threadpoolctl, torch.set_num_threads), best of 5 runs.
"""
import argparse
import subprocess
import sys
import time
import timeit

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from spec.architectures import unroll

B, T, H = 8, 128, 256  # input size = hidden size


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


def best(fn, repeat=5):
    fn()
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--suite", action="store_true", help="also time `pytest -n 2` (the default suite)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((B, T, H)) * 0.5
    h0, C0 = np.zeros((B, H)), np.zeros((B, H))
    print(f"batch {B}, seq {T}, hidden {H}, float64, 1 thread; best of 5, seconds")
    print(f"{'cell':<6}{'oracle':>10}{'numpy':>10}{'torch':>10}{'oracle/torch':>14}")
    with threadpool_limits(1):
        for kind, gates in (("lstm", "fiCo"), ("gru", "rzh")):
            p = {f"W_{g}": rng.standard_normal((H, 2 * H)) / np.sqrt(2 * H) for g in gates}
            p |= {f"b_{g}": rng.standard_normal(H) * 0.1 for g in gates}
            cols = {k: v[:, None] if v.ndim == 1 else v for k, v in p.items()}
            state = {"h": h0[..., None]} | ({"C": C0[..., None]} if kind == "lstm" else {})
            oracle = lambda: unroll(kind, cols, xs[..., None], state)  # noqa: E731
            hand = (lambda: numpy_lstm(p, xs, h0, C0)) if kind == "lstm" else (lambda: numpy_gru(p, xs, h0))
            module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(H, H, batch_first=True).double().eval()
            tx = torch.from_numpy(xs)
            with torch.no_grad():
                times = best(oracle), best(hand), best(lambda: module(tx))
            np.testing.assert_allclose(oracle()[1]["h"][..., 0], hand(), atol=1e-10)  # same function
            print(f"{kind:<6}{times[0]:>10.4f}{times[1]:>10.4f}{times[2]:>10.4f}{times[0] / times[2]:>14.2f}")
    if args.suite:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--hypothesis-profile", "ci"],
                              capture_output=True, text=True)
        tail = [line for line in done.stdout.splitlines() if " in " in line and ("passed" in line or "failed" in line)]
        print(f"default suite, pytest -n 2, ci profile: {time.perf_counter() - start:.1f} s wall  ({tail[-1] if tail else done.returncode})")


if __name__ == "__main__":
    main()
