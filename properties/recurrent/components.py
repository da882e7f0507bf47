"""The recurrent components (§1–2): the cells, their layers (stacked, bidirectional) and seq2seq,
each with the E-ids it covers, a way to draw a case, and its oracle (spec/recurrent.py's and
spec/architectures.py's, called on the subject's names).

Arrays here are in the subject's layout (batch first, row vectors, biases 1-D); the oracle
converts to the spec's columns and back. A case is (params, inputs); params may nest (a list of
layers, an encoder and a decoder).
"""
from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace
from hypothesis import strategies as st

from nlpspec.spec import architectures, recurrent

from ..engine.component import Component, cell_eids
from ..engine.strategies import Shape, case, magnitude, past_overflow, size


def columns(params):
    """Subject layout -> spec layout for parameters: a bias (H,) becomes a column (H, 1)."""
    if isinstance(params, dict):
        return {k: columns(v) for k, v in params.items()}
    if isinstance(params, list):
        return [columns(v) for v in params]
    return params[:, None] if params.ndim == 1 else params


CELL_PARAMS = {
    # parameter name -> shape in (H, I) of a cell of each kind
    "rnn": {"W_hh": lambda H, I: (H, H), "W_xh": lambda H, I: (H, I), "b_h": lambda H, I: (H,)},
    "lstm": {f"{p}_{g}": (lambda H, I: (H, H + I)) if p == "W" else (lambda H, I: (H,))
             for g in "fiCo" for p in "Wb"},
    "gru": {f"{p}_{g}": (lambda H, I: (H, H + I)) if p == "W" else (lambda H, I: (H,))
            for g in "rzh" for p in "Wb"},
    "gru.reset_after": {"W_r": lambda H, I: (H, H + I), "b_r": lambda H, I: (H,),
                        "W_z": lambda H, I: (H, H + I), "b_z": lambda H, I: (H,),
                        "W_in": lambda H, I: (H, I), "b_in": lambda H, I: (H,),
                        "W_hn": lambda H, I: (H, H), "b_hn": lambda H, I: (H,)},
}


def cell_params(kind: str, H: int, I: int, bound: float) -> dict:
    return {name: Shape(shape(H, I), bound) for name, shape in CELL_PARAMS[kind].items()}


def state(kind: str, shape: tuple, bound: float) -> dict:
    """h_prev in [-1, 1] (a tanh's range), C_prev (LSTM) in [-bound, bound]."""
    return {"h_prev": Shape(shape, 1.0), **({"C_prev": Shape(shape, bound)} if kind == "lstm" else {})}


def state_names(kind: str) -> tuple[str, ...]:
    return recurrent.STATE[kind]


def recast(params, kind: str, other: str):
    """The drawn weights read as a cell of kind `other`, as an adapter maps them, for the variant
    diagnosis: the article's GRU's W_h = [W_hn, W_in] split at the h columns, b_in = b_h, b_hn = 0, and
    z's sense turned (W_z, b_z negated: the reset-after z keeps the old state); back where b_hn is 0;
    None where there is no such reading."""
    if isinstance(params, list):
        found = [recast(p, kind, other) for p in params]
        return None if any(p is None for p in found) else found
    if {"W_h", "W_in"}.isdisjoint(params):  # not a GRU cell: layers, an encoder/decoder pair, an output
        found = {k: recast(v, kind, other) if isinstance(v, (dict, list)) else v for k, v in params.items()}
        return None if any(v is None for v in found.values()) else found
    gates = {"W_r": params["W_r"], "b_r": params["b_r"], "W_z": -params["W_z"], "b_z": -params["b_z"]}
    if kind == "gru" and other == "gru.reset_after":
        H = params["W_h"].shape[0]
        return gates | {"W_in": params["W_h"][:, H:], "b_in": params["b_h"], "W_hn": params["W_h"][:, :H],
                        "b_hn": np.zeros_like(params["b_h"])}
    if kind == "gru.reset_after" and other == "gru" and not params["b_hn"].any():
        return gates | {"W_h": np.concatenate([params["W_hn"], params["W_in"]], axis=1), "b_h": params["b_in"]}
    return None


# --- oracles -----------------------------------------------------------------------------------
def cell_oracle(kind: str):
    def oracle(params: dict, inputs: dict) -> dict:
        state = {name: inputs[f"{name}_prev"][..., None] for name in state_names(kind)}
        env = architectures.step(kind, columns(params), inputs["x"][..., None], state)
        return {eq.lhs.name: env[eq.lhs.name][..., 0] for eq in recurrent.CELLS[kind]}
    return oracle


def output_oracle(params: dict, inputs: dict) -> dict:
    return {"y": architectures.output(columns(params), inputs["h"][..., None])[..., 0]}


def layers_oracle(kind: str):
    """The stack of (bidirectional) layers; given `lengths`, each row run to its own length, its
    outputs past it 0 (architectures.unroll)."""
    def oracle(params: dict, inputs: dict) -> dict:
        L, D = inputs["h_prev"].shape[1:3]
        state0 = [[{name: inputs[f"{name}_prev"][:, l, d, :, None] for name in state_names(kind)}
                   for d in range(D)] for l in range(L)]
        out, finals = architectures.layers(kind, columns(params["layers"]), inputs["x"][..., None], state0,
                                           inputs.get("lengths"))
        result = {"out": out[..., 0]}
        for name in state_names(kind):
            xp = array_namespace(out)
            result[name] = xp.stack([xp.stack([f[name][..., 0] for f in layer], axis=1) for layer in finals], axis=1)
        return result
    return oracle


def seq2seq_oracle(kind: str):
    def oracle(params: dict, inputs: dict) -> dict:
        p = columns(params)
        state0 = {name: inputs[f"{name}_prev"][..., None] for name in state_names(kind)}
        hs, ys = architectures.seq2seq(kind, p["encoder"], p["decoder"], p["output"], inputs["x"][..., None],
                                       inputs["y_prev"][..., None], state0)
        return {"h": hs[..., 0], "y": ys[..., 0]}
    return oracle


# --- drawing cases: sizes first, then every array of the case in one draw -------------------
def input_bound(data, bound: float, I: int) -> float:
    """The inputs' bound: the case's, or in a quarter of the cases one that puts the gates'
    pre-activations (about bound · x_bound · √I / 3 for weights in [-bound, bound]) past exp's overflow
    in the run's dtype, where every gate saturates and an exp-based σ or tanh overflows."""
    return past_overflow(data, bound * np.sqrt(I) / 3) or bound


def draw_cell_case(kind: str):
    def draw(data):
        B, H, I, bound = size(data, "B"), size(data, "H"), size(data, "I"), magnitude(data)
        x = Shape((B, I), input_bound(data, bound, I))
        return case(data, cell_params(kind, H, I, bound), {"x": x, **state(kind, (B, H), bound)})
    return draw


def draw_output_case(data):
    B, H, V, bound = size(data, "B"), size(data, "H"), size(data, "V"), magnitude(data)
    return case(data, {"W_y": Shape((V, H), bound), "b_y": Shape((V,), bound)}, {"h": Shape((B, H), 1.0)})


def draw_layers_case(kind: str, layers: int | None = None, directions: int | None = None, lengths: bool = False,
                     padded: bool = False):
    """A layers case; with `lengths`, each row's length as well (draw_lengths), `padded`: one row at least
    shorter than T."""
    def draw(data):
        B, T = size(data, "B"), size(data, "T", low=2 if padded else 1, high=4)
        H, I, bound = size(data, "H"), size(data, "I"), magnitude(data)
        L = layers or size(data, "L", high=3)
        D = directions or size(data, "D", high=2)
        params = {"layers": [[cell_params(kind, H, I if l == 0 else D * H, bound) for d in range(D)]
                             for l in range(L)]}
        x = Shape((B, T, I), input_bound(data, bound, I))
        params, inputs = case(data, params, {"x": x, **state(kind, (B, L, D, H), bound)})
        return params, inputs | ({"lengths": draw_lengths(data, B, T, padded)} if lengths else {})
    return draw


def draw_lengths(data, B: int, T: int, padded: bool) -> np.ndarray:
    """Each row's length in 1 … T (the rest of its T steps padding); `padded`: one row, drawn, shorter
    than T. Shrinks towards every row of length 1."""
    lengths = data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B), label="lengths")
    if padded:
        row = data.draw(st.integers(0, B - 1), label="padded row")
        lengths[row] = min(lengths[row], T - 1)
    return np.array(lengths, dtype=np.int64)


def draw_seq2seq_case(kind: str):
    def draw(data):
        B, T, m, bound = size(data, "B"), size(data, "T", high=4), size(data, "m", high=4), magnitude(data)
        H, I, J, V = size(data, "H"), size(data, "I"), size(data, "J"), size(data, "V")
        params = {"encoder": cell_params(kind, H, I, bound), "decoder": cell_params(kind, H, J, bound),
                  "output": {"W_y": Shape((V, H), bound), "b_y": Shape((V,), bound)}}
        inputs = {"x": Shape((B, T, I), input_bound(data, bound, I)), "y_prev": Shape((B, m, J), bound),
                  **state(kind, (B, H), bound)}
        return case(data, params, inputs)
    return draw


# --- the components ----------------------------------------------------------------------------
def cell_output_eids(kind):
    return {eq.lhs.name: eq.eid for eq in recurrent.CELLS[kind]}


ARCH_EIDS = ("seq.many_to_many", "seq.many_to_one", "seq.stacked", "seq.bidirectional")


# the ranges of the article's functions: σ in [0, 1], tanh in [-1, 1]; C, the cell state, is unbounded
BOUNDS = {name: (0.0, 1.0) for name in ("f", "i", "o", "r", "z", "y")} | \
    {name: (-1.0, 1.0) for name in ("h", "out", "Chat", "htilde", "n")}


def _components():
    common = dict(bounds=BOUNDS, probabilities=("y",), recast=recast)
    found = [Component(name="rnn.output", family="rnn", eids=("rnn.output",), required=("y",),
                       draw=lambda data, kind: draw_output_case(data), oracle=lambda kind: output_oracle,
                       output_eids={"y": "rnn.output"}, **common)]
    for kind in ("rnn", "lstm", "gru"):
        layer_outputs = {"out": "seq.many_to_many", "h": "seq.many_to_one", "C": "seq.many_to_one"}
        found.append(Component(name=f"{kind}.cell", family=kind, eids=cell_eids(kind), required=state_names(kind),
                               draw=lambda data, k: draw_cell_case(k)(data), oracle=cell_oracle,
                               output_eids=cell_output_eids(kind), kind_outputs=cell_output_eids, step=True,
                               **common))
        found.append(Component(name=f"{kind}.layers", family=kind, eids=cell_eids(kind) + ARCH_EIDS,
                               required=("out",) + state_names(kind),
                               draw=lambda data, k: draw_layers_case(k)(data), oracle=layers_oracle,
                               output_eids=layer_outputs, cell=f"{kind}.cell", **common))
        found.append(Component(name=f"{kind}.layers_padded", family=kind, eids=cell_eids(kind) + ARCH_EIDS,
                               required=("out",) + state_names(kind),
                               draw=lambda data, k: draw_layers_case(k, lengths=True)(data), oracle=layers_oracle,
                               output_eids=layer_outputs, cell=f"{kind}.cell", padded=True, **common))
        found.append(Component(name=f"{kind}.seq2seq", family=kind,
                               eids=cell_eids(kind) + ("rnn.output", "seq.seq2seq"), required=("h", "y"),
                               draw=lambda data, k: draw_seq2seq_case(k)(data), oracle=seq2seq_oracle,
                               output_eids={"h": "seq.seq2seq", "y": "rnn.output"}, **common))
    return found


COMPONENTS = _components()


