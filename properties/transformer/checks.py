"""The invariants of the Transformer family (§4), stated on the subject's own outputs: the
residual connections, causality, the encoder's memory and padding, incremental decoding, stacks."""
from __future__ import annotations


import numpy as np
from hypothesis import strategies as st

from nlpspec.spec.constants import constant
from nlpspec.spec.transformer import normalised, stack_output

from ..engine import failures as fail
from ..engine import tolerance as tol
from ..engine.check import Check, all_eids, evaluate, first_nonzero, parameter_gradient, row_gradients
from ..engine.component import Component
from ..engine.harness import Harness, options_running
from ..engine.ran import ran_as
from ..engine.strategies import Shape, case, magnitude, size
from . import components as tf

BY_NAME = {c.name: c for c in tf.COMPONENTS}  # this family's components


def sequence(h: Harness) -> str:
    """The input a layer or a stack transforms: its source (an encoder's) or its target (a decoder's)."""
    return h.component.source or h.component.target


def attentions(h: Harness) -> tuple:
    """A layer's attention sublayers: the keys of their parameters."""
    return tuple(params for _, params in h.component.blocks if params != "ffn")


def pre_ln(h: Harness) -> bool:
    return any(v.endswith(".pre_ln") for v in h.kind)


def check_residual(h: Harness, data):
    """Every sublayer silenced through its parameters (W_O = 0, b_O = 0, W_2 = 0, b_2 = 0): each block returns
    LN(x) (post-LN) or x itself (pre-LN), so the layer returns LN_k(… LN_1(x)) or x."""
    params, inputs = h.draw(data)
    name, norms = sequence(h), len(h.component.blocks)  # one LayerNorm per block
    silenced = {**params, "W_2": np.zeros_like(params["W_2"]), "b_2": np.zeros_like(params["b_2"]),
                **{a: {**params[a], "W_O": np.zeros_like(params[a]["W_O"]), "b_O": np.zeros_like(params[a]["b_O"])}
                   for a in attentions(h)}}
    actual, reference, tols = evaluate(h, silenced, inputs)
    expected = inputs[name]
    if not pre_ln(h):
        p = tf.rows(params)
        for k in range(1, norms + 1):
            expected = normalised(expected, p, k)
    h.compare({"out": actual["out"]}, {"out": expected}, tols,
              what=f"{'x' if pre_ln(h) else 'LN(… LN(x))'}: every sublayer silenced, only the residual path is left",
              eid=h.output_eids["out"])



def standardised(data, shape, same_row: bool) -> np.ndarray:
    """Rows of mean 0 and (biased) variance 1 - ε (the ε in force), so that LN with γ = 1, β = 0 returns them
    unchanged; with same_row, one row per sequence, repeated at every position."""
    B, n, d = shape
    raw = case(data, {}, {"x": Shape((B, 1 if same_row else n, d), 1.0)})[1]["x"] + 3 * np.arange(d)  # features never all equal
    centred = raw - raw.mean(-1, keepdims=True)
    rows = centred * np.sqrt((1 - constant("layernorm.epsilon")) / (centred**2).mean(-1, keepdims=True))
    return np.broadcast_to(rows, shape).copy()


def check_residual_sum(h: Harness, data):
    """LN made the identity (γ = 1, β = 0, standardised input) and one block's sublayer made
    s(x) = x(Π - I), Π a permutation of the features, every other block silenced: the layer
    returns x + s(x) = xΠ, post-LN or pre-LN. The attention sublayer gives x(Π - I) when every
    position holds the same row (W_V = I, W_O = Π - I, b_V = b_O = 0); the FFN does with W_1 = [I, -I], b_1 = 0,
    W_2 = [Π - I; I - Π], b_2 = 0, since ReLU(a) - ReLU(-a) = a (and GELU(a) - GELU(-a) = a)."""
    params, inputs = h.draw(data)
    name = sequence(h)
    eid, active = data.draw(st.sampled_from(h.component.blocks), label="active block")
    heads, _, d_k = params[attentions(h)[0]]["W_Q"].shape
    d_k = 2 if heads * d_k == 1 else d_k  # one feature has no standardised row
    d = heads * d_k
    shift = data.draw(st.integers(1, d - 1), label="feature shift")
    perm = np.roll(np.eye(d), shift, axis=1)  # Π: a cyclic shift of the features, never I
    B, n = inputs[name].shape[:2]
    new = {}
    for key in attentions(h):
        drawn = case(data, {"W_Q": Shape((heads, d, d_k), tf.PARAM_BOUND), "W_K": Shape((heads, d, d_k), tf.PARAM_BOUND),
                            "b_Q": Shape((heads, d_k), tf.PARAM_BOUND), "b_K": Shape((heads, d_k), tf.PARAM_BOUND)},
                     {})[0]
        identity = np.eye(d).reshape(d, heads, d_k).transpose(1, 0, 2)
        out = perm - np.eye(d) if key == active else np.zeros((d, d))
        new[key] = {**drawn, "W_V": identity, "W_O": out, "b_V": np.zeros((heads, d_k)), "b_O": np.zeros(d)}
    split = perm - np.eye(d) if active == "ffn" else np.zeros((d, d))
    new |= {"W_1": np.concatenate([np.eye(d), -np.eye(d)], 1), "b_1": np.zeros(2 * d),
            "W_2": np.concatenate([split, -split], 0), "b_2": np.zeros(d)}
    new |= {f"{p}_{k}": np.full(d, 1.0 if p == "gamma" else 0.0) for k in range(1, len(h.component.blocks) + 1)
            for p in ("gamma", "beta")}
    x = standardised(data, (B, n, d), same_row=active != "ffn")
    sized = {name: x}
    memory = h.component.memory
    if memory is not None:  # cross-attention reads the same rows from the encoder
        memory_shape = (B, inputs[memory].shape[1], d)
        sized[memory] = np.broadcast_to(x[:, :1], memory_shape).copy() if active == "cross_attn" else \
            standardised(data, memory_shape, same_row=False)
    params, inputs = h.round(new), {**inputs, **h.round(sized)}
    actual, reference, tols = evaluate(h, params, inputs)
    x = inputs[name]
    expected = np.where(np.isnan(reference["out"]), np.nan, x @ perm)
    gap = tol.max_abs_diff(expected, reference["out"])  # x rounded to the dtype is standardised only so far
    bound = {"out": tols["out"].plus(gap=gap)}
    variant = f"{eid}.pre_ln" if f"{eid}.pre_ln" in h.kind else eid
    h.compare({"out": actual["out"]}, {"out": expected}, bound, eid=variant,
              what=f"x + sublayer(x): LN the identity (γ = 1, β = 0, standardised x), only the {eid} sublayer on")


def unseen_positions(h: Harness, inputs, n: int) -> np.ndarray:
    """(n, n): True where position j is hidden from position i in every sequence of the case: the later
    ones (mask.causal), and, where the component's hidden keys say so, those before a sliding window."""
    if h.component.hidden_keys is None:
        return np.triu(np.ones((n, n), dtype=bool), 1)
    return h.component.hidden_keys(h.kind, inputs).reshape((-1, n, n)).all(axis=0)


def check_causal_layer(h: Harness, data):
    """Decoder output i does not change when the decoder's inputs hidden from i change (those after i;
    under a sliding window also those before it), and its autograd Jacobian with respect to them is
    exactly 0. The outputs compared are those of every position that sees none of the changed ones."""
    params, inputs = h.draw(data)
    name = h.component.target
    y = inputs[name]
    i = data.draw(st.integers(0, y.shape[1] - 1), label="position")
    fn, reference = h.build(params), h.reference(params, inputs)
    before, tols = h.call(fn, inputs, reference), h.tolerances(params, inputs, reference)
    unseen = unseen_positions(h, inputs, y.shape[1])
    hidden = unseen[i]
    kept = unseen[:, hidden].all(axis=1)  # the positions that see none of those changed (i among them)
    new = h.round(case(data, {}, {name: Shape(y.shape, magnitude(data))})[1])[name]
    changed = {**inputs, name: np.where(hidden[None, :, None], new, y)}
    after = h.call(fn, changed, h.reference(params, changed))
    eid = ran_as(h, "mask.causal")[0]
    rows = {k: v[..., kept, :] if k == "weights" else v[:, kept] for k, v in after.items()}
    h.compare(rows, {k: v[..., kept, :] if k == "weights" else v[:, kept] for k, v in before.items()},
              tol.doubled(tols), what=f"its own outputs {positions(kept)} before the inputs at {positions(hidden)} "
                                      f"(hidden from position {i}) changed", eid=eid)
    grads = row_gradients(h, fn, inputs, (name,), i, "causal")
    if grads is None or grads[name] is None:
        return
    index = first_nonzero(grads[name], np.broadcast_to(hidden[None, :, None], grads[name].shape), h, "causal")
    if index is not None:
        b, j, c = index
        where = "a later position" if j > i else "a position before its window"
        raise fail.gradient_leak(h.where(), eid, f"the gradient of output {i} with respect to "
                                 f"{name}[{b}, {j}, {c}] ({where}) is {grads[name][index]:.6g}")


def positions(which: np.ndarray) -> str:
    """The positions where `which` holds, in words: "0…3", "0, 4", "none"."""
    found = [int(j) for j in np.flatnonzero(which)]
    if not found:
        return "none"
    if found == list(range(found[0], found[-1] + 1)) and len(found) > 2:
        return f"{found[0]}…{found[-1]}"
    return ", ".join(map(str, found))


def check_memory_permutation(h: Harness, data):
    """Cross-attention reads the encoder's output as a set: permuting its positions changes nothing."""
    params, inputs = h.draw(data)
    actual, _, tols = evaluate(h, params, inputs)
    memory = h.component.memory
    order = np.array(data.draw(st.permutations(range(inputs[memory].shape[1])), label="memory order"))
    moved, _, _ = evaluate(h, params, {**inputs, memory: inputs[memory][:, order]})
    h.compare(moved, actual, tol.doubled(tols), what="its own output before the encoder positions were permuted",
              eid="dec.cross")



def check_padding_positions(h: Harness, data):
    """Positions appended as key padding change nothing at the original positions (for the model:
    source tokens, hidden from the encoder and from cross-attention)."""
    params, inputs = h.draw(data)
    actual, _, tols = evaluate(h, params, inputs)
    name, (mask,) = h.component.source, h.component.masks
    along = None if h.component.target is None else ("memory",)  # the model: only the encoder's output runs along src
    x = inputs[name]
    B, n = x.shape[:2]
    extra = size(data, "appended positions", high=3)
    if name == "src":
        new = tf.token_ids(data, (B, extra), params["src_embedding"].shape[0], "appended tokens")
    else:
        new = h.round(case(data, {}, {"x": Shape((B, extra, x.shape[2]), magnitude(data))})[1])["x"]
    longer = {**inputs, name: np.concatenate([x, new], 1),
              mask: np.concatenate([inputs[mask], np.ones((B, extra), bool)], 1)}
    grown, _, _ = evaluate(h, params, longer)
    h.compare({k: v[:, :n] if along is None or k in along else v for k, v in grown.items()}, actual, tol.doubled(tols),
              what=f"its own output before {extra} padded position(s) were appended", eid="mask.key_padding")


def check_incremental_decoding(h: Harness, data):
    """Decoding position by position, each step fed the prefix so far, gives the teacher-forced outputs."""
    params, inputs = h.draw(data)
    full, _, tols = evaluate(h, params, inputs)
    name = h.component.target
    steps = []
    for i in range(inputs[name].shape[1]):
        prefix, _, _ = evaluate(h, params, {**inputs, name: inputs[name][:, :i + 1]})
        steps.append(prefix["out"][:, i])
    h.compare({"out": np.stack(steps, 1)}, {"out": full["out"]}, {"out": tols["out"].doubled()},
              what="its own outputs decoded one position at a time from the prefix",
              eid="transformer.decoder" if "transformer.decoder" in all_eids(h) else "mask.causal")


def check_causal_model(h: Harness, data):
    """With the right shift, the prediction at i depends on targets before i only: changing the
    targets at i and after leaves outputs 0…i unchanged, the encoder's output ignores the targets,
    and the autograd gradient of prediction i with respect to the target embedding of a token that
    appears only at i and after is exactly 0."""
    params, inputs = h.draw(data)
    before, reference, tols = evaluate(h, params, inputs)
    tgt = inputs["tgt"]
    i = data.draw(st.integers(0, tgt.shape[1] - 1), label="position")
    vocabulary = params["tgt_embedding"].shape[0]
    new = tf.token_ids(data, tgt.shape, vocabulary, "new targets")
    changed = {**inputs, "tgt": np.where(np.arange(tgt.shape[1])[None, :] >= i, new, tgt)}
    after, _, _ = evaluate(h, params, changed)
    h.compare({k: v if k == "memory" else v[:, :i + 1] for k, v in after.items()},
              {k: v if k == "memory" else v[:, :i + 1] for k, v in before.items()}, tol.doubled(tols),
              what=f"its own outputs 0…{i} before the targets at {i} and after changed (the right shift and the "
                   f"causal mask hide them)", eid="pe.shift_right")
    # the Jacobian, on the sequences whose prediction i is defined (a wholly padded source has none,
    # and its NaN would reach every row of the shared embedding table)
    defined = ~np.isnan(reference["out"][:, i]).any(-1)
    if not defined.any():
        return
    inputs, tgt = {k: v[defined] for k, v in inputs.items()}, tgt[defined]
    grad = parameter_gradient(h, params, inputs, "tgt_embedding", i, "causal_model")
    if grad is None:
        return
    # prediction i reads the decoder's positions 0…i: ⟨bos⟩ (token 0) and the targets before i
    seen = np.zeros(vocabulary, bool)
    seen[0] = True
    seen[tgt[:, :i]] = True
    later = np.zeros(vocabulary, bool)
    later[tgt[:, i:]] = True
    index = first_nonzero(grad, np.broadcast_to((later & ~seen)[:, None], grad.shape), h, "causal_model",
                          per_row=False)
    if index is not None:
        token, c = index
        raise fail.gradient_leak(h.where(), "pe.shift_right", f"the gradient of prediction {i} with respect to the "
                                 f"embedding of token {token}, which appears only at targets {i} and after, is "
                                 f"{grad[index]:.6g} at feature {c}")


def check_stacked_layers(h: Harness, data):
    """A stack of N layers equals the subject's own layer applied N times (with stack.final_norm,
    then the spec's LN with the stack's own γ and β)."""
    params, inputs = h.draw(data)
    stacked, _, tols = evaluate(h, params, inputs)
    component = BY_NAME[h.component.layer]
    layer_kind = tuple(v for v in h.kind if v != "stack.final_norm")  # a variant of the stack, not of its layers
    options = options_running(h.run, component, layer_kind)
    if options is None:
        h.unjudged(f"no option set of {component.name} runs {', '.join(layer_kind) or 'the article'}: "
                           f"stacked_layers not checked")
        return
    single = h.companion(component, options)
    name = sequence(h)
    value = inputs[name]
    for p in params["layers"]:
        value = evaluate(single, p, {**inputs, name: value})[0]["out"]
    value = stack_output(value, tf.rows(params.get("norm")), h.kind)
    h.compare({"out": value}, {"out": stacked["out"]}, tol.doubled(tols),
              what="its own single layer applied once per layer", eid=h.component.output_eids["out"])


def sublayer_eids(h: Harness) -> tuple:
    return tuple(e for e in all_eids(h) if e.startswith(("enc.", "dec.")))


RESIDUAL = Check("residual", "Every sublayer silenced through its parameters: the layer returns LN(… LN(x)) "
                 "(post-LN) or x (pre-LN).", lambda h: tuple(e for e in all_eids(h) if e.startswith(("enc.", "dec."))
                                                            or e == "layernorm"), check_residual)
RESIDUAL_SUM = Check("residual_sum", "LN made the identity (γ = 1, β = 0, standardised input), one sublayer on: "
                     "the layer returns x + sublayer(x).", sublayer_eids, check_residual_sum)
CAUSAL = Check("causal", "Decoder output i is unchanged when inputs after i (or before its sliding window) change; "
               "its Jacobian there is exactly 0.",
               lambda h: tuple(e for e in ran_as(h, "mask.causal", "dec.self") if e in all_eids(h)), check_causal_layer)
MEMORY_PERMUTATION = Check("memory_permutation", "Permuting the encoder's output positions leaves the decoder's "
                           "output unchanged.", lambda h: ran_as(h, "dec.cross"), check_memory_permutation)
PADDING_POSITIONS = Check("padding_positions", "Appending padded positions (source tokens, for the model) leaves the "
                          "outputs at the others unchanged.", lambda h: ran_as(h, "mask.key_padding", "enc.attn", *(
                              ("dec.cross",) if h.component.target else ())), check_padding_positions,
                          requires=lambda c: ("key_padding",))
INCREMENTAL_DECODING = Check("incremental_decoding", "Decoding one position at a time from the prefix equals the "
                             "teacher-forced pass.",
                             lambda h: tuple(e for e in ran_as(h, "mask.causal", "transformer.decoder")
                                             if e in all_eids(h)),
                             check_incremental_decoding)
CAUSAL_MODEL = Check("causal_model", "With the right shift, the prediction at i ignores the targets at i and after "
                     "(their embeddings' Jacobian is exactly 0); the encoder ignores the targets.",
                     lambda h: ran_as(h, "pe.shift_right", "mask.causal", "transformer.model"), check_causal_model)
STACKED_LAYERS = Check("stacked_layers", "A stack of N layers equals the subject's own layer applied N times "
                       "(then LN, with stack.final_norm).",
                       lambda h: (h.component.output_eids["out"],), check_stacked_layers,
                       lambda c: (c.layer,))


def yield_checks(component: Component):
    """The Transformer family's checks that apply to `component`, by its traits: residual blocks, a
    target read causally (with a source: the model), a memory, a source with key padding, a stack."""
    decodes = component.target is not None
    if component.blocks:
        yield RESIDUAL
        yield RESIDUAL_SUM
    if decodes and component.source is None:
        yield CAUSAL
    if component.memory is not None:
        yield MEMORY_PERMUTATION
    if component.source is not None:
        yield PADDING_POSITIONS
    if component.incremental:
        yield INCREMENTAL_DECODING
    if decodes and component.source is not None:
        yield CAUSAL_MODEL
    if component.layer is not None:
        yield STACKED_LAYERS
