"""The article's figures, recomputed from the oracles (spec/, compiled to float64 NumPy) when the
site is built, and its claims turned into measurements on this machine.

Each function writes one PNG into `out` and returns (file name, caption).
"""
from __future__ import annotations

import pathlib
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nlpspec.spec import compile_equation, evaluate_chain  # noqa: E402
from nlpspec.spec import attention as attn  # noqa: E402
from nlpspec.spec import positional  # noqa: E402
from nlpspec.spec.recurrent import CELLS  # noqa: E402


def save(fig, out: pathlib.Path, name: str) -> str:
    fig.savefig(out / name, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return name


def positional_encoding(out: pathlib.Path) -> tuple[str, str]:
    """pe.sin / pe.cos: P for 2048 positions × 512 columns, as in the article."""
    P = compile_equation(positional.PE_INPUT)(X=np.zeros((2048, 512)))
    fig, ax = plt.subplots(figsize=(9, 5))
    image = ax.imshow(P, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    ax.set(xlabel="column (sin at 2j, cos at 2j + 1)", ylabel="position i", title="Positional encoding P (pe.sin, pe.cos)")
    fig.colorbar(image, ax=ax)
    return save(fig, out, "positional_encoding.png"), \
        "The positional encoding P for 2048 positions and 512 columns, computed by the pe.input oracle (X = 0)."


def causal_attention(out: pathlib.Path) -> tuple[str, str]:
    """mask.causal against self.attention: with V = I, the attention output is the weight matrix."""
    rng = np.random.default_rng(0)
    n, d = 8, 4
    Q, K = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    free = compile_equation(attn.SELF_ATTENTION)(Q=Q, K=K, V=np.eye(n))
    causal = compile_equation(attn.MASK_CAUSAL)(Q=Q, K=K, V=np.eye(n))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    hidden = attn.hidden_keys(n, n, causal=True).astype(float)
    panels = ((hidden, "causal mask: keys j > i hidden", "Greys"), (free, "weights, no mask\n(self.attention)", "viridis"),
              (causal, "weights, causal mask\n(mask.causal)", "viridis"))
    for ax, (values, title, cmap), label in zip(axes, panels, ("hidden (1) or seen (0)", "weight", "weight")):
        image = ax.imshow(values, cmap=cmap, vmin=0, vmax=1)
        ax.set(title=title, xlabel="key j", ylabel="query i")
        fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    return save(fig, out, "causal_attention.png"), \
        "Self-attention weights of 8 random queries and keys, without and with the causal mask (oracle, V = I)."


def gates(out: pathlib.Path) -> tuple[str, str]:
    """LSTM and GRU gate activations along a sequence (lstm.forget/input/output, gru.reset/update)."""
    rng = np.random.default_rng(1)
    H, I, T = 4, 2, 60
    t = np.arange(T)
    xs = np.stack([np.sin(t / 5), np.sign(np.sin(t / 11))], 1)[:, :, None]  # a slow wave and a square wave
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for ax, kind, names in ((axes[0], "lstm", ("f", "i", "o")), (axes[1], "gru", ("r", "z"))):
        eqs = CELLS[kind]
        weights = sorted({s.name for eq in eqs for s in eq.inputs if s.name.startswith("W_")})
        params = {w: rng.standard_normal((H, H + I)) * 1.5 / np.sqrt(H + I) for w in weights}
        params |= {"b_" + w[2:]: rng.standard_normal((H, 1)) * 0.5 for w in weights}
        state = {"h_prev": np.zeros((H, 1))} | ({"C_prev": np.zeros((H, 1))} if kind == "lstm" else {})
        trace = {name: [] for name in names}
        for x in xs:
            env = evaluate_chain(eqs, {**params, **state, "x": x})
            for name in names:
                trace[name].append(env[name][0, 0])
            state = {"h_prev": env["h"]} | ({"C_prev": env["C"]} if kind == "lstm" else {})
        for name in names:
            ax.plot(t, trace[name], label=f"{name}_t (unit 1)")
        ax.set(ylim=(-0.05, 1.05), ylabel=f"{kind.upper()} gate", title=f"{kind.upper()} gates along the sequence")
        ax.legend(loc="upper right", ncol=3)
    axes[1].set_xlabel("step t (input: a sine and a square wave)")
    return save(fig, out, "gates.png"), \
        "Gate activations of an LSTM (forget, input, output) and a GRU (reset, update) with random weights, " \
        "computed step by step by the cell oracles."


def _jacobian(step, state: np.ndarray, delta: float = 1e-6) -> np.ndarray:
    """∂step(s)/∂s by central differences, every column in one batched oracle call."""
    n = state.shape[0]
    shifts = np.concatenate([np.eye(n), -np.eye(n)])[:, :, None] * delta
    values = step(state[None, :, None] + shifts)[..., 0]
    return (values[:n] - values[n:]).T / (2 * delta)


def gradient_norms(out: pathlib.Path, T: int = 100) -> tuple[str, str, dict]:
    """‖∂h_T/∂h_0‖ against T: a vanilla RNN whose recurrent weight has spectral radius ρ, and an LSTM;
    the norms at T measured, for the prose (docs/prose.py)."""
    rng = np.random.default_rng(2)
    H, I = 16, 4
    xs = rng.standard_normal((T, I, 1)) * 0.01
    fig, ax = plt.subplots(figsize=(8, 4.5))
    measured = {"T": T}
    rnn = compile_equation(CELLS["rnn"][0])
    Q = np.linalg.qr(rng.standard_normal((H, H)))[0]
    for rho in (0.9, 1.0, 1.1):
        W = {"W_hh": rho * Q, "W_xh": rng.standard_normal((H, I)), "b_h": np.zeros((H, 1))}
        h, product, norms = np.zeros((H, 1)), np.eye(H), []
        for x in xs:
            product = _jacobian(lambda s: rnn(h_prev=s, x=np.broadcast_to(x, s.shape[:-2] + x.shape), **W), h[:, 0]) @ product
            h = rnn(h_prev=h, x=x, **W)
            norms.append(np.linalg.norm(product, 2))
        ax.semilogy(range(1, T + 1), norms, label=f"vanilla RNN, spectral radius ρ = {rho}")
        measured[f"rnn {rho}"] = norms[-1]
    lstm = CELLS["lstm"]
    for forget_bias in (0.0, 3.0):
        W = {f"W_{g}": rng.standard_normal((H, H + I)) / np.sqrt(H + I) for g in "fiCo"}
        W |= {f"b_{g}": np.full((H, 1), forget_bias if g == "f" else 0.0) for g in "fiCo"}

        def step(s, x):
            env = evaluate_chain(lstm, {**W, "h_prev": s[..., :H, :], "C_prev": s[..., H:, :],
                                        "x": np.broadcast_to(x, s.shape[:-2] + x.shape)})
            return np.concatenate([env["h"], env["C"]], -2)
        s, product, norms = np.zeros((2 * H, 1)), np.eye(2 * H), []
        for x in xs:
            product = _jacobian(lambda v: step(v, x), s[:, 0]) @ product
            s = step(s, x)
            norms.append(np.linalg.norm(product[:H, :H], 2))
        ax.semilogy(range(1, T + 1), norms, "--", label=f"LSTM, forget-gate bias {forget_bias:g}")
        measured[f"lstm {forget_bias:g}"] = norms[-1]
    ax.set(xlabel="T", ylabel="‖∂h_T / ∂h_0‖ (spectral norm)", title="Vanishing and exploding gradients")
    ax.legend()
    return save(fig, out, "gradient_norms.png"), \
        "How much h_0 still moves h_T: the spectral norm of ∂h_T/∂h_0 (Jacobians of the cell oracles by central " \
        "differences, chained over T steps). A vanilla RNN's shrinks or grows like ρ^T until tanh saturates; the " \
        "LSTM's cell path keeps it when the forget gate stays open.", measured


def rnn_against_attention(out: pathlib.Path, lengths=(16, 32, 64, 128, 256, 512)) -> tuple[str, str, dict]:
    """Time of a vanilla RNN layer (T sequential steps) against one self-attention layer (one parallel
    pass), both our reference PyTorch code, as the sequence grows, on this machine (measured, for the prose)."""
    import torch

    from nlpspec.reference.attention import attention
    from nlpspec.reference.cells import rnn_cell
    from nlpspec.reference.sequences import unroll

    torch.manual_seed(0)
    d = 64
    W = {"W_hh": torch.randn(d, d) / d**0.5, "W_xh": torch.randn(d, d) / d**0.5, "b_h": torch.zeros(d)}
    W_Q, W_K, W_V = (torch.randn(d, d) / d**0.5 for _ in range(3))
    rnn_times, attention_times = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core each: the comparison is of the work's shape, not of idle cores
    with torch.no_grad():
        for T in lengths:
            x = torch.randn(1, T, d)
            rnn_times.append(_best(lambda: unroll(rnn_cell, W, x, {"h": torch.zeros(1, d)})))
            attention_times.append(_best(lambda: attention(x @ W_Q, x @ W_K, x @ W_V)))
    torch.set_num_threads(threads)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.loglog(lengths, rnn_times, "o-", label="vanilla RNN layer: T sequential steps")
    ax.loglog(lengths, attention_times, "s-", label="self-attention layer: one parallel pass")
    ax.set(xlabel="sequence length T", ylabel="seconds (best of 5)", title=f"RNN against self-attention, d = {d}, "
           f"batch 1, one thread")
    ax.set_xticks(lengths, [str(T) for T in lengths])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend()
    name = "rnn_against_attention.png"
    return save(fig, out, name), \
        f"Wall time of our reference RNN layer and self-attention layer for sequences of {lengths[0]} to " \
        f"{lengths[-1]} positions, one thread each, measured on this machine when the site was built: T sequential " \
        f"steps against one pass whose cost grows with T² but runs as a few large matrix products.", \
        {"lengths": list(lengths), "rnn": rnn_times, "attention": attention_times}


def _best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
