"""§2 RNN architectures: cells chained over a sequence, stacked, flipped, and paired as seq2seq.

Each architecture is a composition of the §1 cell equations. The relations below state it for the
reader; the functions below them are its oracle, chaining the compiled cell equations in NumPy (or torch,
given tensors), over a sequence in their fused form (spec/fused_cells.py: the inputs projected in one
product, as PyTorch does).
Arrays: a sequence is (B, T, n, 1) (batch, time, a column vector per step); a state is (B, H, 1).
"""
from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, device
from sympy import Eq, Function, IndexedBase, Matrix, symbols

from .equation import compose
from .fused_cells import stepper
from .kernels import EvaluationContext
from .oracle import evaluate_chain
from .recurrent import CELLS, RNN_OUTPUT, STATE

t, l, j, T = symbols("t l j T", integer=True)
x, h, s, y = (IndexedBase(n) for n in ("x", "h", "s", "y"))
h_fwd, h_bwd, h_l, h_below = (IndexedBase(n) for n in (r"\overrightarrow{h}", r"\overleftarrow{h}", "h^{(l)}",
                                                       "h^{(l-1)}"))
cell, dec, g = Function(r"\mathrm{cell}"), Function(r"\mathrm{cell}_{dec}"), Function("g")

MANY_TO_MANY = compose("seq.many_to_many", "One cell is applied at every step, its state carried to the next; "
                       "every state is an output (e.g. tagging).", Eq(h[t], cell(h[t - 1], x[t])))
MANY_TO_ONE = compose("seq.many_to_one", "The same chain, of which only the last state is used "
                      "(e.g. sentiment).", Eq(y[T], g(h[T])))
STACKED = compose("seq.stacked", "The state sequence of layer l is the input sequence of layer l+1.",
                  Eq(h_l[t], cell(h_l[t - 1], h_below[t])), Eq(IndexedBase("h^{(0)}")[t], x[t]))
BIDIRECTIONAL = compose("seq.bidirectional", "A second chain reads the reversed sequence; the two states "
                        "are concatenated per step, forward first.",
                        Eq(h_fwd[t], cell(h_fwd[t - 1], x[t])), Eq(h_bwd[t], cell(h_bwd[t + 1], x[t])),
                        Eq(h[t], Matrix([h_fwd[t], h_bwd[t]]), evaluate=False))
SEQ2SEQ = compose("seq.seq2seq", "The encoder's last state starts the decoder, which reads its own inputs "
                  "and emits an output per step.", Eq(s[0], h[T]), Eq(s[j], dec(s[j - 1], y[j - 1])))


def step(kind: str, params: dict, x_t: np.ndarray, state: dict) -> dict:
    """One cell step: every quantity of the cell (gates included) at time t."""
    env = {**params, "x": x_t, **{f"{name}_prev": state[name] for name in STATE[kind]}}
    return evaluate_chain(CELLS[kind], env)


def unroll(kind: str, params: dict, xs: np.ndarray, state0: dict, reverse: bool = False, lengths=None,
           fused: bool = True):
    """seq.many_to_many: states (B, T, H, 1) at every step, and the final state.

    With `lengths` (B,), row b's chain runs over its first lengths[b] steps only, the reversed one
    from its own last step: at a padded step its state is kept and its output is 0 (PyTorch's
    pad_packed_sequence), so the final state is the last real step's.

    The steps are the cell's equations in the fused form (spec/fused_cells.py: the inputs projected in one
    product, one product with the state per step), the same values to float64 rounding; with
    `fused=False`, or in an evaluation context that rounds (EvaluationContext.rounding, whose model rounds the
    inputs of the article's equations), the article's equations one by one (step)."""
    if fused and not _rounding():
        at = stepper(kind, params, xs, state0["h"])
    else:
        def at(k, state):
            return step(kind, params, xs[:, k], state)
    state, outputs = dict(state0), [None] * xs.shape[1]
    steps = range(xs.shape[1] - 1, -1, -1) if reverse else range(xs.shape[1])
    for k in steps:
        out = at(k, state)
        new = {name: out[name] for name in STATE[kind]}
        if lengths is None:
            state, outputs[k] = new, new["h"]
            continue
        xp = array_namespace(new["h"])
        real = xp.reshape(xp.asarray(k < lengths, device=device(new["h"])), (-1, 1, 1))
        state = {name: xp.where(real, new[name], state[name]) for name in new}
        outputs[k] = xp.where(real, new["h"], 0 * new["h"])
    return array_namespace(*outputs).stack(outputs, axis=1), state


def _rounding() -> bool:
    """Whether the evaluation context rounds every compiled equation's inputs (its `rounding`)."""
    return EvaluationContext.current().rounding is not None


def layers(kind: str, params: list, xs: np.ndarray, state0: list, lengths=None, fused: bool = True):
    """seq.stacked of seq.bidirectional layers (each unrolled in the fused form unless `fused=False`).

    params[l] and state0[l] are lists of one (forward) or two (forward, backward) entries.
    Returns the last layer's outputs (B, T, D·H, 1) and the final states, as state0 is laid out;
    with `lengths`, each row padded past its own length (unroll).
    """
    finals = []
    for layer_params, layer_state in zip(params, state0):
        outs = []
        layer_finals = []
        for direction, (p, s0) in enumerate(zip(layer_params, layer_state)):
            out, final = unroll(kind, p, xs, s0, reverse=direction == 1, lengths=lengths, fused=fused)
            outs.append(out)
            layer_finals.append(final)
        xs = array_namespace(*outs).concat(outs, axis=-2)
        finals.append(layer_finals)
    return xs, finals


def output(params: dict, hs: np.ndarray) -> np.ndarray:
    """rnn.output at every step of a state sequence."""
    from .oracle import compile_equation
    return compile_equation(RNN_OUTPUT)(W_y=params["W_y"], b_y=params["b_y"], h=hs)


def seq2seq(kind: str, encoder: dict, decoder: dict, out: dict, xs: np.ndarray, ys_in: np.ndarray,
            state0: dict):
    """seq.seq2seq: the decoder's states (B, m, H, 1) and its outputs (B, m, V, 1)."""
    _, last = unroll(kind, encoder, xs, state0)
    hs, _ = unroll(kind, decoder, ys_in, last)
    return hs, output(out, hs)
