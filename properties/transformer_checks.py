"""The invariants of the Transformer's layers (§4), stated on the subject's own outputs."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from . import transformer as tf
from .check import doubled, evaluate, first_nonzero, row_gradients
from .harness import Harness, SubjectFailure
from .strategies import Shape, case, magnitude, size

LAYERS = {"encoder.layer": ("x", ("attn",), 2), "decoder.layer": ("y", ("self_attn", "cross_attn"), 3)}


def pre_ln(h: Harness) -> bool:
    return any(v.endswith(".pre_ln") for v in h.kind)


def check_residual(h: Harness, data):
    """Every sublayer silenced through its parameters (W_O = 0, W_2 = 0, b_2 = 0): each block returns
    LN(x) (post-LN) or x itself (pre-LN), so the layer returns LN_k(… LN_1(x)) or x."""
    params, inputs = h.draw(data)
    name, attentions, norms = LAYERS[h.component.name]
    silenced = {**params, "W_2": np.zeros_like(params["W_2"]), "b_2": np.zeros_like(params["b_2"]),
                **{a: {**params[a], "W_O": np.zeros_like(params[a]["W_O"])} for a in attentions}}
    actual, reference, tols = evaluate(h, silenced, inputs)
    expected = inputs[name]
    if not pre_ln(h):
        p = tf.rows_of_layer(params)
        for k in range(1, norms + 1):
            expected = tf.normalised(expected, p, k)
    h.compare({"out": actual["out"]}, {"out": expected}, tols,
              what=f"{'x' if pre_ln(h) else 'LN(… LN(x))'}: every sublayer silenced, only the residual path is left",
              eid=h.output_eids["out"])


def check_causal_layer(h: Harness, data):
    """Decoder output i does not change when the decoder's inputs after i change, and its autograd
    Jacobian with respect to them is exactly 0."""
    params, inputs = h.draw(data)
    y = inputs["y"]
    i = data.draw(st.integers(0, y.shape[1] - 1), label="position")
    fn, reference = h.build(params), h.reference(params, inputs)
    before, tols = h.call(fn, inputs, reference), h.tolerances(params, inputs, reference)
    later = np.arange(y.shape[1]) > i
    new = h.round(case(data, {}, {"y": Shape(y.shape, magnitude(data))})[1])["y"]
    changed = {**inputs, "y": np.where(later[None, :, None], new, y)}
    after = h.call(fn, changed, h.reference(params, changed))
    h.compare({k: v[:, :i + 1] for k, v in after.items()}, {k: v[:, :i + 1] for k, v in before.items()},
              doubled(tols), what=f"its own outputs 0…{i} before the inputs after position {i} changed",
              eid="mask.causal")
    grads = row_gradients(h, fn, inputs, ("y",), i, "causal")
    if grads is None or grads["y"] is None:
        return
    index = first_nonzero(grads["y"], np.broadcast_to(later[None, :, None], grads["y"].shape))
    if index is not None:
        b, j, c = index
        raise SubjectFailure(f"[mask.causal] {h.where()}: the gradient of output {i} with respect to y[{b}, {j}, {c}] "
                             f"(a later position) is {grads['y'][index]:.6g}, not exactly 0 (a random cotangent, "
                             f"autograd)")


def check_memory_permutation(h: Harness, data):
    """Cross-attention reads the encoder's output as a set: permuting its positions changes nothing."""
    params, inputs = h.draw(data)
    actual, _, tols = evaluate(h, params, inputs)
    order = np.array(data.draw(st.permutations(range(inputs["memory"].shape[1])), label="memory order"))
    moved, _, _ = evaluate(h, params, {**inputs, "memory": inputs["memory"][:, order]})
    h.compare(moved, actual, doubled(tols), what="its own output before the encoder positions were permuted",
              eid="dec.cross")


def check_padding_positions(h: Harness, data):
    """Positions appended as key padding change nothing at the original positions."""
    params, inputs = h.draw(data)
    actual, _, tols = evaluate(h, params, inputs)
    x = inputs["x"]
    extra = size(data, "appended positions", high=3)
    new = h.round(case(data, {}, {"x": Shape((x.shape[0], extra, x.shape[2]), magnitude(data))})[1])["x"]
    longer = {"x": np.concatenate([x, new], 1),
              "key_padding_mask": np.concatenate([inputs["key_padding_mask"], np.ones((x.shape[0], extra), bool)], 1)}
    grown, _, _ = evaluate(h, params, longer)
    h.compare({k: v[:, :x.shape[1]] for k, v in grown.items()}, actual, doubled(tols),
              what=f"its own output before {extra} padded position(s) were appended", eid="mask.key_padding")


def check_incremental_decoding(h: Harness, data):
    """Decoding position by position, each step fed the prefix so far, gives the teacher-forced outputs."""
    params, inputs = h.draw(data)
    full, _, tols = evaluate(h, params, inputs)
    name = "tgt" if h.component.name == "transformer" else "y"
    steps = []
    for i in range(inputs[name].shape[1]):
        prefix, _, _ = evaluate(h, params, {**inputs, name: inputs[name][:, :i + 1]})
        steps.append(prefix["out"][:, i])
    h.compare({"out": np.stack(steps, 1)}, {"out": full["out"]}, doubled(tols),
              what="its own outputs decoded one position at a time from the prefix", eid="transformer.decoder")


def check_causal_model(h: Harness, data):
    """With the right shift, the prediction at i depends on targets before i only: changing the
    targets at i and after leaves outputs 0…i unchanged; the encoder's output ignores the targets."""
    params, inputs = h.draw(data)
    before, _, tols = evaluate(h, params, inputs)
    tgt = inputs["tgt"]
    i = data.draw(st.integers(0, tgt.shape[1] - 1), label="position")
    vocabulary = params["tgt_embedding"].shape[0]
    new = tf.token_ids(data, tgt.shape, vocabulary, "new targets")
    changed = {**inputs, "tgt": np.where(np.arange(tgt.shape[1])[None, :] >= i, new, tgt)}
    after, _, _ = evaluate(h, params, changed)
    h.compare({k: v if k == "memory" else v[:, :i + 1] for k, v in after.items()},
              {k: v if k == "memory" else v[:, :i + 1] for k, v in before.items()}, doubled(tols),
              what=f"its own outputs 0…{i} before the targets at {i} and after changed (the right shift and the "
                   f"causal mask hide them)", eid="pe.shift_right")


def check_stacked_layers(h: Harness, data):
    """A stack of N layers equals the subject's own layer applied N times."""
    from dataclasses import replace

    from .components import COMPONENTS
    from .harness import option_sets
    params, inputs = h.draw(data)
    stacked, _, tols = evaluate(h, params, inputs)
    component = COMPONENTS[f"{h.component.name}.layer"]
    options = [o for o in option_sets(h.run.subject, component) if o == h.run.options] or \
        option_sets(h.run.subject, component)[:1]
    single = Harness(replace(h.run, options=options[0]), component)
    name = "x" if h.component.name == "encoder" else "y"
    value = inputs[name]
    for p in params["layers"]:
        value = evaluate(single, p, {**inputs, name: value})[0]["out"]
    h.compare({"out": value}, {"out": stacked["out"]}, doubled(tols),
              what="its own single layer applied once per layer", eid=f"transformer.{h.component.name}")
