"""The checks: one generator of (component, check) pairs feeding both pytest and the plain runner.

A check is a property of one component, run by Hypothesis on drawn cases. `oracle` compares with
the spec; the others are the article's invariants, stated on the subject's own outputs. Each
names the E-ids it bears on, so the summary can say which equation a failure points at.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from nlpspec.spec.recurrent import CELLS, UPDATE_KEEPS_STATE

from . import failures as fail
from . import tolerance as tol
from . import attention_checks as attn
from . import transformer_checks as layer_checks
from .attention import hidden_keys
from .check import Check, all_eids, evaluate
from .components import COMPONENTS, draw_layers_case
from .harness import Harness, SubjectFailure, option_sets

SATURATE = 50.0  # |pre-activation| that closes or opens a gate: σ(-50) ≈ 2e-22 < eps(float64)


# --- oracle and generic properties -------------------------------------------------------------
def check_oracle(h: Harness, data):
    """Equal to the spec (a subject whose two calls differ is reported as non-deterministic by
    Harness.compare, not as computing another equation)."""
    params, inputs = h.draw(data)
    fn, reference = h.build(params), h.reference(params, inputs)
    actual = h.call(fn, inputs, reference)
    h.compare(actual, reference, h.tolerances(params, inputs, reference), case=(params, inputs))


def check_determinism(h: Harness, data):
    params, inputs = h.draw(data)
    reference = h.reference(params, inputs)
    h.call(h.build(params), inputs, reference)
    unstable = h.nondeterminism()
    if unstable:
        raise unstable


def check_batch_independence(h: Harness, data):
    params, inputs = h.draw(data)
    batched, reference, _ = evaluate(h, params, inputs)
    batched_inputs = {k: v for k, v in inputs.items() if k not in h.component.shared}
    b = data.draw(st.integers(0, len(next(iter(batched_inputs.values()))) - 1), label="row")
    row = {k: v if k in h.component.shared else v[b:b + 1] for k, v in inputs.items()}
    alone, row_reference, row_tol = evaluate(h, params, row)
    h.compare({k: v if k in h.component.shared else v[b:b + 1] for k, v in batched.items()}, alone, tol.doubled(row_tol),
              what=f"the same subject run on batch row {b} alone (batch rows must not interact)")


# --- recurrent invariants ----------------------------------------------------------------------
RECURRENT_BOUNDS = {name: (0.0, 1.0) for name in ("f", "i", "o", "r", "z", "y")} | \
    {name: (-1.0, 1.0) for name in ("h", "out", "Chat", "htilde", "n")}  # C, the cell state, is unbounded
PROBABILITIES = ("y", "weights", "mean_weights")  # rows that a softmax makes: in [0, 1], summing to 1
FAMILY_BOUNDS = {"attention": {"weights": (0.0, 1.0), "mean_weights": (0.0, 1.0)}, "pe": {"P": (-1.0, 1.0)},
                 "transformer": {}}
PROBABILITY_OUTPUTS = {"classifier": ("out",), "transformer": ("out",)}  # components whose "out" is a softmax


def check_bounds(h: Harness, data):
    params, inputs = h.draw(data)
    actual, _, _ = evaluate(h, params, inputs)
    slack = tol.FLOOR_ULPS * tol.eps(h.run.dtype)  # (1 - z) h + z h̃ may round a hair past 1
    bounds = RECURRENT_BOUNDS if h.component.recurrent else \
        FAMILY_BOUNDS[h.component.family] | {name: (0.0, 1.0) for name in PROBABILITY_OUTPUTS.get(h.component.name, ())}
    for name, value in actual.items():
        if name not in bounds:
            continue
        low, high = bounds[name]
        outside = (value < low - slack) | (value > high + slack)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise fail.outside(h.where(), h.output_eids.get(name, h.component.name), name, value[index], list(index),
                               low, high, slack)
    for name in PROBABILITIES + PROBABILITY_OUTPUTS.get(h.component.name, ()):
        if name in actual:
            probability_rows(h, name, actual[name], inputs)


def probability_rows(h: Harness, name: str, value: np.ndarray, inputs):
    """Each softmax row sums to 1 and gives hidden keys exactly 0 (rows with no key visible: not checked)."""
    eid = h.output_eids.get(name, h.component.name)
    hidden = hidden_keys(h.component.name, h.kind, inputs)
    if hidden is not None:
        hidden = np.broadcast_to(hidden if name != "mean_weights" else hidden[:, 0], value.shape)
        defined = ~hidden.all(axis=-1)
        leaked = hidden & (value != 0) & defined[..., None]
        if leaked.any():
            index = tuple(int(i) for i in np.argwhere(leaked)[0])
            raise SubjectFailure(f"output {name!r} is {value[index]:.6g} at {list(index)}, where the key is hidden: "
                                 f"a masked weight must be exactly 0", "bounds", h.where(), eid)
    else:
        defined = np.ones(value.shape[:-1], dtype=bool)
    sums = value.sum(axis=-1)
    floor = tol.FLOOR_ULPS * tol.eps(h.run.dtype) * value.shape[-1]
    off = defined & (np.abs(sums - 1) > floor)
    if off.any():
        index = tuple(int(i) for i in np.argwhere(off)[0])
        raise SubjectFailure(f"output {name!r} has a row summing to {sums[index]:.17g} at {list(index)}, not 1 "
                             f"(within {floor:.3g}); a softmax row is a probability vector", "bounds", h.where(), eid)


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
def layers_case(h: Harness, data, layers=None, directions=None):
    params, inputs = draw_layers_case(h.kind, layers, directions)(data)
    h.examples += 1
    return h.round(params), h.round(inputs)


def run_layers(h: Harness, params, inputs):
    reference = h.reference(params, inputs)
    return h.call(h.build(params), inputs, reference), reference, h.tolerances(params, inputs, reference)


def check_unroll_equals_steps(h: Harness, data):
    params, inputs = layers_case(h, data, layers=1, directions=1)
    out, _, tols = run_layers(h, params, inputs)
    cell_component = COMPONENTS[f"{h.component.family}.cell"]
    cell = Harness(replace(h.run, options=option_sets(h.run.subject, cell_component)[0]), cell_component)
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


def is_cell(c):
    return c.name.endswith(".cell")


def is_layers(c):
    return c.name.endswith(".layers")


CHECKS = (
    Check("oracle", "Equals the spec's oracle on drawn shapes and values.", lambda c: True, all_eids, check_oracle),
    Check("determinism", "Two calls on the same inputs give identical outputs.", lambda c: True, all_eids,
          check_determinism),
    Check("batch_independence", "Row b of a batched run equals the run on row b alone.", lambda c: True,
          all_eids, check_batch_independence),
    Check("bounds", "tanh states lie in [-1, 1], gates and probabilities in [0, 1], softmax rows sum to 1.",
          lambda c: True, all_eids, check_bounds),
    Check("highway", "Forget gate open and input gate closed: C_t = C_{t-1}.", lambda c: c.name == "lstm.cell",
          lambda h: ("lstm.forget", "lstm.input", "lstm.cell"), check_highway),
    Check("closed_update", "Update gate saturated to keep the state: h_t = h_{t-1}.",
          lambda c: c.name == "gru.cell", lambda h: (CELLS[h.kind][1].eid, CELLS[h.kind][-1].eid),
          check_closed_update),
    Check("unroll_equals_steps", "The layer equals stepping the subject's own cell.", is_layers,
          lambda h: ("seq.many_to_many",), check_unroll_equals_steps, lambda c: (f"{c.family}.cell",)),
    Check("bidirectional_reversal", "The backward half is the forward layer on the reversed sequence, reversed.",
          is_layers, lambda h: ("seq.bidirectional",), check_bidirectional_reversal),
    Check("stacked_composition", "A stack of L layers equals its layers composed.", is_layers,
          lambda h: ("seq.stacked",), check_stacked_composition),
    Check("permutation", "Permuting the queries permutes the output rows; permuting keys and values together "
          "changes nothing.", attn.component_is("attention", "mha", "attn.seq2seq"), all_eids,
          attn.check_permutation),
    Check("hidden_keys_ignored", "Output i is unchanged when keys and values hidden from query i, or other "
          "queries, change; their autograd Jacobian is exactly 0.",
          attn.component_is("attention", "attention.causal", "mha"), attn.mask_eids, attn.check_hidden_keys_ignored),
    Check("padding_appended", "Appending padding keys (hidden from every query) changes nothing.",
          attn.component_is("attention", "mha"), attn.mask_eids, attn.check_padding_appended),
    Check("equal_keys", "All keys equal and none hidden: each output row is the mean of the values.",
          attn.component_is("attention", "mha"), all_eids, attn.check_equal_keys),
    Check("one_head", "One-head MHA equals single-head attention on the projections, times W_O.",
          attn.component_is("mha"), lambda h: ("mha.head", "mha.output"), attn.check_one_head,
          lambda c: ("attention",)),
    Check("head_locality", "With W_O = I, changing one head's weights changes only that head's columns.",
          attn.component_is("mha"), lambda h: ("mha.head", "mha.output"), attn.check_head_locality),
    Check("fully_masked_row", "A query with no key visible is undefined and not compared; the other rows are "
          "right; what the subject gives there is reported.", attn.component_is("attention", "mha"),
          attn.mask_eids, attn.check_fully_masked_row),
    Check("full_size", "At the article's 2048 positions × 512 columns, X = 0 gives P, which matches the spec "
          "and lies in [-1, 1].", attn.component_is("pe"), all_eids, attn.check_full_size),
    Check("residual", "Every sublayer silenced through its parameters: the layer returns LN(… LN(x)) "
          "(post-LN) or x (pre-LN).", attn.component_is("encoder.layer", "decoder.layer"),
          lambda h: tuple(e for e in all_eids(h) if e.startswith(("enc.", "dec.")) or e == "layernorm"),
          layer_checks.check_residual),
    Check("residual_sum", "LN made the identity (γ = 1, β = 0, standardised input), one sublayer on: the layer "
          "returns x + sublayer(x).", attn.component_is("encoder.layer", "decoder.layer"),
          lambda h: tuple(e for e in all_eids(h) if e.startswith(("enc.", "dec."))), layer_checks.check_residual_sum),
    Check("causal", "Decoder output i is unchanged when inputs after i change; its Jacobian there is exactly 0.",
          attn.component_is("decoder.layer", "decoder"), lambda h: ("mask.causal", "dec.self"),
          layer_checks.check_causal_layer),
    Check("memory_permutation", "Permuting the encoder's output positions leaves the decoder's output unchanged.",
          attn.component_is("decoder.layer", "decoder"), lambda h: ("dec.cross",), layer_checks.check_memory_permutation),
    Check("padding_positions", "Appending padded positions (source tokens, for the model) leaves the outputs at the "
          "others unchanged.",
          attn.component_is("encoder.layer", "encoder", "transformer"),
          lambda h: ("mask.key_padding", "enc.attn") + (("dec.cross",) if h.component.name == "transformer" else ()),
          layer_checks.check_padding_positions),
    Check("incremental_decoding", "Decoding one position at a time from the prefix equals the teacher-forced pass.",
          attn.component_is("decoder", "transformer"), lambda h: ("mask.causal", "transformer.decoder"),
          layer_checks.check_incremental_decoding),
    Check("causal_model", "With the right shift, the prediction at i ignores the targets at i and after (their "
          "embeddings' Jacobian is exactly 0); the encoder ignores the targets.", attn.component_is("transformer"),
          lambda h: ("pe.shift_right", "mask.causal", "transformer.model"), layer_checks.check_causal_model),
    Check("stacked_layers", "A stack of N layers equals the subject's own layer applied N times.",
          attn.component_is("encoder", "decoder"), lambda h: (f"transformer.{h.component.name}",),
          layer_checks.check_stacked_layers, lambda c: (f"{c.name}.layer",)),
)


def generate():
    """Every (component, check) pair of the suite, in a stable order: the one generator."""
    for component in COMPONENTS.values():
        for check in CHECKS:
            if check.applies(component):
                yield component, check
