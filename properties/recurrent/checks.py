"""The invariants of the recurrent family (§1–2), stated on the subject's own outputs: the LSTM
highway, the GRU's closed update, and the architectures (a layer is its cell stepped, the
backward half of a bidirectional layer is the forward one reversed, a stack is its layers composed).
"""
from __future__ import annotations


import numpy as np
from hypothesis import strategies as st

from nlpspec.spec.recurrent import CELLS, UPDATE_KEEPS_STATE

from ..engine import tolerance as tol
from ..engine.check import Check, evaluate
from ..engine.component import Component
from ..engine.harness import Harness, options_running
from ..engine.strategies import Shape, arrays, magnitude
from .components import COMPONENTS, draw_layers_case

SATURATE = 50.0  # |pre-activation| that closes or opens a gate: σ(-50) ≈ 2e-22 < eps(float64)
BY_NAME = {c.name: c for c in COMPONENTS}  # this family's components


def saturated(params: dict, gate: str, sign: float) -> dict:
    """Parameters with gate `gate` forced open (sign +1) or closed (-1): W = 0, b = ±SATURATE."""
    return {**params, f"W_{gate}": np.zeros_like(params[f"W_{gate}"]),
            f"b_{gate}": np.full_like(params[f"b_{gate}"], sign * SATURATE)}


def keeps(h: Harness, params, inputs, state: str, eid: str, why: str):
    """The subject's new `state` equals the old one (to rounding of the output)."""
    actual, _, _ = evaluate(h, params, inputs)
    old = inputs[f"{state}_prev"]
    bound = tol.output_rounding(old, h.run.dtype)
    h.compare({state: actual[state]}, {state: old}, {state: bound}, what=f"its previous state ({why})", eid=eid)


def check_highway(h: Harness, data):
    params, inputs = h.draw(data)
    params = saturated(saturated(params, "f", +1), "i", -1)
    keeps(h, params, inputs, "C", "lstm.cell", "forget gate open, input gate closed: the LSTM highway")


def check_closed_update(h: Harness, data):
    params, inputs = h.draw(data)
    sign = +1 if UPDATE_KEEPS_STATE[h.kind] == 1 else -1
    params = saturated(params, "z", sign)
    eid = CELLS[h.kind][-1].eid
    keeps(h, params, inputs, "h", eid, f"update gate saturated at z = {UPDATE_KEEPS_STATE[h.kind]}")


# --- architecture invariants -------------------------------------------------------------------
def layers_case(h: Harness, data, layers=None, directions=None, **padding):
    params, inputs = draw_layers_case(h.kind, layers, directions, **padding)(data)
    h.examples += 1
    return h.round(params), h.round(inputs)


def run_layers(h: Harness, params, inputs):
    reference = h.reference(params, inputs)
    return h.call(h.build(params), inputs, reference), reference, h.tolerances(params, inputs, reference)


def check_unroll_equals_steps(h: Harness, data):
    params, inputs = layers_case(h, data, layers=1, directions=1)
    out, _, tols = run_layers(h, params, inputs)
    cell_component = BY_NAME[h.component.cell]
    options = options_running(h.run, cell_component, h.kind)
    if options is None:
        h.unjudged(f"no option set of {cell_component.name} runs {h.kind}: unroll_equals_steps not checked")
        return
    cell = h.companion(cell_component, options)
    fn = cell.build(params["layers"][0][0])
    state = {k: v[:, 0, 0] for k, v in inputs.items() if k.endswith("_prev")}
    steps = []
    for t in range(inputs["x"].shape[1]):
        step_in = {"x": inputs["x"][:, t], **state}
        got = cell.call(fn, step_in, cell.reference(params["layers"][0][0], step_in))
        state = {f"{k}_prev": got[k] for k in cell.component.required}
        steps.append(got["h"])
    h.compare({"out": np.stack(steps, 1)}, {"out": out["out"]}, tol.doubled(tols),
              what="stepping the subject's own cell over the sequence")


def check_bidirectional_reversal(h: Harness, data):
    params, inputs = layers_case(h, data, layers=1, directions=2)
    out, _, tols = run_layers(h, params, inputs)
    H = inputs["h_prev"].shape[-1]
    backward_params = {"layers": [[params["layers"][0][1]]]}
    reversed_inputs = {"x": inputs["x"][:, ::-1].copy(),
                       **{k: v[:, :, 1:2].copy() for k, v in inputs.items() if k.endswith("_prev")}}
    alone, _, _ = run_layers(h, backward_params, reversed_inputs)
    h.compare({"out": out["out"][..., H:]}, {"out": alone["out"][:, ::-1].copy()},
              {"out": tol.doubled(tols)["out"]},
              what="its forward layer on the reversed sequence, reversed back (the backward half)")


def check_stacked_composition(h: Harness, data):
    params, inputs = layers_case(h, data, layers=data.draw(st.integers(2, 3),
                                                           label="L"))
    out, _, tols = run_layers(h, params, inputs)
    x, finals = inputs["x"], {}
    for l, layer in enumerate(params["layers"]):
        one = {"x": x, **{k: v[:, l:l + 1] for k, v in inputs.items() if k.endswith("_prev")}}
        got, _, _ = run_layers(h, {"layers": [layer]}, one)
        x = got["out"]
        for name in got:
            finals.setdefault(name, []).append(got[name])
    composed = {"out": x, **{k: np.concatenate(v, 1) for k, v in finals.items() if k != "out"}}
    h.compare(out, composed, tol.doubled(tols), what="its single layers composed one after another")


# --- padded sequences (KIND.layers_padded): each row is its own sequence, cut at its length ------
def real_steps(lengths: np.ndarray, T: int) -> np.ndarray:
    """(B, T, 1): True at the steps each row has (t < its length), False at its padding."""
    return (np.arange(T) < lengths[:, None])[..., None]


def at_real_steps(out: dict, lengths: np.ndarray) -> dict:
    """The outputs with `out` undefined (NaN: not compared) at the padded steps."""
    return out | {"out": np.where(real_steps(lengths, out["out"].shape[1]), out["out"], np.nan)}


def check_padded_steps_ignored(h: Harness, data):
    params, inputs = layers_case(h, data, lengths=True, padded=True)
    out, _, tols = run_layers(h, params, inputs)
    x = inputs["x"]
    other = h.round(arrays(data, {"x": Shape(x.shape, magnitude(data))})["x"])
    changed = inputs | {"x": np.where(real_steps(inputs["lengths"], x.shape[1]), x, other)}
    again, _, _ = run_layers(h, params, changed)
    h.compare(at_real_steps(again, inputs["lengths"]), at_real_steps(out, inputs["lengths"]), tol.doubled(tols),
              what="the same sequences with other values at their padded steps (a padded step changes nothing)")


def check_final_is_last_real_step(h: Harness, data):
    params, inputs = layers_case(h, data, lengths=True, padded=True)
    out, _, tols = run_layers(h, params, inputs)
    B, _, D, H = inputs["h_prev"].shape
    last = out["h"].copy()
    last[:, -1, 0] = out["out"][np.arange(B), inputs["lengths"] - 1, :H]
    if D == 2:  # the backward chain ends at step 0
        last[:, -1, 1] = out["out"][:, 0, H:]
    h.compare({"h": out["h"]}, {"h": last}, {"h": tol.doubled(tols)["h"]}, eid="seq.many_to_one",
              what="its own output at each row's last real step (the backward direction's: at step 0)")


def check_backward_starts_at_own_end(h: Harness, data):
    params, inputs = layers_case(h, data, layers=1, directions=2, lengths=True, padded=True)
    out, _, tols = run_layers(h, params, inputs)
    H, lengths = inputs["h_prev"].shape[-1], inputs["lengths"]
    backward = {"layers": [[params["layers"][0][1]]]}
    expected = {"out": np.full_like(out["out"][..., H:], np.nan)} | {k: v.copy() for k, v in out.items() if k != "out"}
    for b, n in enumerate(lengths):
        row = {"x": inputs["x"][b:b + 1, :n][:, ::-1].copy(), "lengths": lengths[b:b + 1],
               **{k: v[b:b + 1, :, 1:2] for k, v in inputs.items() if k.endswith("_prev")}}
        alone, _, _ = run_layers(h, backward, row)
        expected["out"][b, :n] = alone["out"][0, ::-1]
        for name in alone.keys() - {"out"}:
            expected[name][b, 0, 1] = alone[name][0, 0, 0]
    h.compare(at_real_steps(out | {"out": out["out"][..., H:]}, lengths), expected, tol.doubled(tols),
              eid="seq.bidirectional", what="its forward layer on each row's real steps reversed, reversed back "
              "(the backward half starts at each row's own last step)")


HIGHWAY = Check("highway", "Forget gate open and input gate closed: C_t = C_{t-1}.",
                lambda h: ("lstm.forget", "lstm.input", "lstm.cell"), check_highway)
CLOSED_UPDATE = Check("closed_update", "Update gate saturated to keep the state: h_t = h_{t-1}.",
                      lambda h: (CELLS[h.kind][1].eid, CELLS[h.kind][-1].eid), check_closed_update)
UNROLL_EQUALS_STEPS = Check("unroll_equals_steps", "The layer equals stepping the subject's own cell.",
                            lambda h: ("seq.many_to_many",), check_unroll_equals_steps,
                            lambda c: (c.cell,))
BIDIRECTIONAL_REVERSAL = Check("bidirectional_reversal", "The backward half is the forward layer on the reversed "
                               "sequence, reversed.", lambda h: ("seq.bidirectional",), check_bidirectional_reversal)
STACKED_COMPOSITION = Check("stacked_composition", "A stack of L layers equals its layers composed.",
                            lambda h: ("seq.stacked",), check_stacked_composition)


PADDED_STEPS_IGNORED = Check("padded_steps_ignored", "Other values at the padded steps change no output at a real "
                             "step nor the final state.", lambda h: ("seq.many_to_many", "seq.many_to_one"),
                             check_padded_steps_ignored)
FINAL_IS_LAST_REAL_STEP = Check("final_is_last_real_step", "The final state is the output at each row's last real "
                                "step (the backward direction's at step 0).", lambda h: ("seq.many_to_one",),
                                check_final_is_last_real_step)
BACKWARD_STARTS_AT_OWN_END = Check("backward_starts_at_own_end", "The backward half is the forward layer on each row's "
                                   "real steps reversed, reversed back.", lambda h: ("seq.bidirectional",),
                                   check_backward_starts_at_own_end)


def yield_checks(component: Component):
    """The recurrent family's checks that apply to `component`, by its traits: one step of an LSTM or
    a GRU cell, a layer that steps a cell, its rows padded."""
    if component.step and component.family == "lstm":
        yield HIGHWAY
    if component.step and component.family == "gru":
        yield CLOSED_UPDATE
    if component.cell is not None and not component.padded:
        yield UNROLL_EQUALS_STEPS
        yield BIDIRECTIONAL_REVERSAL
        yield STACKED_COMPOSITION
    if component.cell is not None and component.padded:
        yield PADDED_STEPS_IGNORED
        yield FINAL_IS_LAST_REAL_STEP
        yield BACKWARD_STARTS_AT_OWN_END
