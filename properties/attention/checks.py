"""The invariants of the attention family (§3–4), stated on the subject's own outputs (the oracle
check is in properties/generic.py).

Each compares the subject with itself on a changed case, within twice the tolerance of the rule
(two outputs each within atol of the truth differ by at most 2·atol), or with a plain fact
(the mean of the values, a weight of exactly 0).
"""
from __future__ import annotations


import numpy as np
from hypothesis import strategies as st

from ..engine import failures as fail
from ..engine import tolerance as tol
from ..engine.check import Check, all_eids, evaluate, first_nonzero, row_gradients
from ..engine.component import Component
from ..engine.harness import Harness, options_running
from ..engine.strategies import Shape, case, magnitude, size
from ..profiles import dtype_name
from . import components as att

BY_NAME = {c.name: c for c in att.COMPONENTS}  # this family's components

# the axes along which query positions (first) and key positions (second) run, in every array
POSITIONS = {"q": (1, None), "k": (None, 1), "v": (None, 1), "mask": (1, 2),
             "query": (1, None), "key": (None, 1), "value": (None, 1), "attn_mask": (0, 1),
             "key_padding_mask": (None, 1), "S": (1, None), "H": (None, 1),
             "out": (1, None), "heads": (1, None), "context": (1, None),
             "weights": (-2, -1), "mean_weights": (-2, -1), "scores": (-2, -1)}


def permuted(arrays: dict, queries, keys) -> dict:
    moved = {}
    for name, a in arrays.items():
        query_axis, key_axis = POSITIONS[name]
        if query_axis is not None and a.shape[query_axis] > 1:  # 1: a key padding mask (B, 1, m), for every query
            a = np.take(a, queries, axis=query_axis)
        if key_axis is not None:
            a = np.take(a, keys, axis=key_axis)
        moved[name] = a
    return moved


def lengths(h: Harness, inputs) -> tuple[int, int]:
    return inputs[h.component.queries].shape[1], inputs[h.component.keys[0]].shape[1]


def fresh(h: Harness, data, shapes: dict) -> dict:
    """New arrays of the given shapes, drawn and rounded to the run's dtype."""
    bound = magnitude(data)
    return h.round(case(data, {}, {name: Shape(shape, bound) for name, shape in shapes.items()})[1])


def hidden_by_row(h: Harness, inputs) -> np.ndarray:
    """(B, n, m): True where key j is hidden from query i of batch row b."""
    n, m = lengths(h, inputs)
    B = inputs[h.component.queries].shape[0]
    hidden = h.component.hidden_keys(h.kind, inputs)
    if hidden is None:
        return np.zeros((B, n, m), dtype=bool)
    return np.broadcast_to(hidden[:, 0] if hidden.ndim == 4 else hidden, (B, n, m))


def query_row(outputs: dict, i: int) -> dict:
    """Row i of every output (weights: the query axis is the second last)."""
    return {k: v[..., i:i + 1, :] if POSITIONS[k] == (-2, -1) else v[:, i:i + 1] for k, v in outputs.items()}


# --- the checks --------------------------------------------------------------------------------
def check_permutation(h: Harness, data):
    params, inputs = h.draw(data)
    actual, _, tols = evaluate(h, params, inputs)
    n, m = lengths(h, inputs)
    queries = np.array(data.draw(st.permutations(range(n)), label="query order"))
    keys = queries if "cross_attention" in h.lacks else np.array(data.draw(st.permutations(range(m)),
                                                                           label="key order"))
    moved, _, _ = evaluate(h, params, permuted(inputs, queries, keys))
    h.compare(moved, permuted(actual, queries, keys), tol.doubled(tols),
              what="its own output on the original order, permuted (queries permute the output rows; "
                   "keys and values permuted together change nothing)")


def check_hidden_keys_ignored(h: Harness, data):
    """Output i does not depend on the keys and values hidden from query i, nor on other queries."""
    params, inputs = h.draw(data)
    hidden = hidden_by_row(h, inputs)
    rows = [i for i in range(hidden.shape[1]) if hidden[:, i].any() and not hidden[:, i].all(axis=-1).all()]
    if not rows:
        return  # no query of this case has a key hidden from it
    i = data.draw(st.sampled_from(rows), label="query row")
    fn, reference = h.build(params), h.reference(params, inputs)
    before, tols = h.call(fn, inputs, reference), h.tolerances(params, inputs, reference)
    query, keys = h.component.queries, h.component.keys
    new = fresh(h, data, {name: inputs[name].shape for name in (query, *keys)})
    changed = dict(inputs)
    for name in keys:
        changed[name] = np.where(hidden[:, i, :, None], new[name], inputs[name])
    others = np.arange(inputs[query].shape[1]) != i
    changed[query] = np.where(others[None, :, None], new[query], inputs[query])
    after = h.call(fn, changed, h.reference(params, changed))
    h.compare(query_row(after, i), query_row(before, i), tol.doubled(tols),
              what=f"its own output {i} before the keys and values hidden from query {i} (and the other "
                   f"queries) were changed")
    jacobian_is_zero(h, fn, inputs, hidden, i)


def jacobian_is_zero(h: Harness, fn, inputs, hidden, i: int):
    """∂ out[:, i] / ∂ (hidden keys and values, other queries) is exactly 0 under autograd."""
    __tracebackhide__ = True
    query, keys = h.component.queries, h.component.keys
    grads = row_gradients(h, fn, inputs, (query, *keys), i, "hidden_keys_ignored")
    if grads is None:
        return
    others = np.arange(inputs[query].shape[1]) != i
    # a query with no key visible has NaN weights, and autograd's 0·NaN spreads from it to every
    # key and value of its batch row: only batch rows where every query sees a key are checked
    defined = ~hidden.all(axis=-1).any(axis=-1)[:, None, None]
    for name, grad in grads.items():
        if grad is None:
            continue
        where = defined & (others[None, :, None] if name == query else hidden[:, i, :, None])
        index = first_nonzero(grad, np.broadcast_to(where, grad.shape), h, "hidden_keys_ignored")
        if index is not None:
            b, j, c = index
            what = f"query {j}" if name == query else f"key {j}, hidden from query {i}"
            raise fail.gradient_leak(h.where(), mask_eid(h), f"the gradient of output row {i} with respect to "
                                     f"{name}[{b}, {j}, {c}] ({what}) is {grad[b, j, c]:.6g}")


def check_padding_appended(h: Harness, data):
    """Keys appended as padding (hidden from every query) change nothing."""
    params, inputs = h.draw(data)
    actual, _, tols = evaluate(h, params, inputs)
    keys = h.component.keys
    (B, m), n = inputs[keys[0]].shape[:2], lengths(h, inputs)[0]
    extra = size(data, "appended keys", high=3)
    new = fresh(h, data, {name: (B, extra, inputs[name].shape[-1]) for name in keys})
    longer = {**inputs, **{name: np.concatenate([inputs[name], new[name]], 1) for name in keys}}
    if "attn_mask" in h.component.masks:  # mha: a mask per query and key, and key padding per row
        longer["attn_mask"] = np.concatenate([inputs["attn_mask"], np.zeros((n, extra), bool)], 1)
        longer["key_padding_mask"] = np.concatenate([inputs["key_padding_mask"], np.ones((B, extra), bool)], 1)
    else:
        rows = inputs["mask"].shape[1]  # n, or 1 for a key padding mask (B, 1, m)
        longer["mask"] = np.concatenate([inputs["mask"], np.ones((B, rows, extra), bool)], 2)
    grown, _, _ = evaluate(h, params, longer)
    grown = {k: v[..., :m] if k in ("weights", "mean_weights") else v for k, v in grown.items()}
    h.compare(grown, actual, tol.doubled(tols), what=f"its own output before {extra} padding key(s) were appended")


def check_equal_keys(h: Harness, data):
    """All keys equal and none hidden: every weight is 1/m, so each output row is the mean value."""
    params, inputs = h.draw(data)
    n, m = lengths(h, inputs)
    k, v = h.component.keys
    same = {**inputs, k: np.repeat(inputs[k][:, :1], m, axis=1)}
    if "attn_mask" in h.component.masks:
        same |= {"attn_mask": np.zeros((n, m), bool), "key_padding_mask": np.zeros((len(inputs[k]), m), bool)}
        actual, reference, tols = evaluate(h, params, same)
        one = {**same, k: same[k][:, :1], v: h.round(same[v].mean(axis=1, keepdims=True)),
               "attn_mask": np.zeros((n, 1), bool), "key_padding_mask": np.zeros((len(inputs[k]), 1), bool)}
        alone, alone_reference, alone_tols = evaluate(h, params, one)
        gap = tol.max_abs_diff(alone_reference["out"], reference["out"])  # the mean, rounded to the dtype
        h.compare({"out": actual["out"]}, {"out": alone["out"]}, {"out": tols["out"].plus(alone_tols["out"], gap)},
                  what="its own output for one key holding the mean value (all keys equal)")
        return
    same["mask"] = np.zeros_like(inputs["mask"])
    actual, _, tols = evaluate(h, params, same)
    mean = np.broadcast_to(same[v].mean(axis=1, keepdims=True), actual["out"].shape).copy()
    h.compare({"out": actual["out"]}, {"out": mean}, tols, what="the mean of the values (all keys equal)")


def check_one_head(h: Harness, data):
    """One-head MHA is attention on the projected queries, keys and values, times W_O."""
    params, inputs = h.draw(data, lambda data, kind, **declared: att.draw_mha(data, kind, heads=1, **declared))
    actual, reference, tols = evaluate(h, params, inputs)
    component = BY_NAME["attention"]
    options = options_running(h.run, component)
    if options is None:
        h.unjudged(f"no option set of attention runs in {dtype_name(h.run.dtype)} on {h.run.device.type}, as "
                   f"the subject declares: one_head not checked")
        return
    single = h.companion(component, options)
    projected = single.round({name: inputs[x] @ params[W][0] + params[b][0] for name, x, W, b in
                              (("q", "query", "W_Q", "b_Q"), ("k", "key", "W_K", "b_K"), ("v", "value", "W_V", "b_V"))}
                             | {"mask": att.mha_hidden(inputs)})
    got, single_reference, single_tols = evaluate(single, {}, projected)
    W_O, b_O = params["W_O"], params["b_O"]
    # attention's error carried through W_O, and the gap the rounding of the projections opens
    carried = single_tols["out"].times(float(np.abs(W_O).sum(axis=0).max()), "largest column sum of |W_O|")
    gap = tol.max_abs_diff(single_reference["out"] @ W_O + b_O, reference["out"])
    h.compare({"out": actual["out"]}, {"out": got["out"] @ W_O + b_O}, {"out": tols["out"].plus(carried, gap)},
              what="the subject's single-head attention on X_q W_Q + b_Q, X_k W_K + b_K, X_v W_V + b_V, times W_O, "
                   "plus b_O")


def check_head_locality(h: Harness, data):
    """With W_O = I the output is the concatenated heads: changing head t's weights changes only
    columns t·d_v … (t+1)·d_v - 1."""
    heads = data.draw(st.integers(2, att.MAX_HEADS), label="h")
    params, inputs = h.draw(data, lambda data, kind, **declared: att.draw_mha(data, kind, heads=heads, **declared))
    heads, d_model, d_k = params["W_Q"].shape
    params["W_O"], params["b_O"] = np.eye(d_model), np.zeros(d_model)
    before, _, tols = evaluate(h, params, inputs)
    t = data.draw(st.integers(0, heads - 1), label="changed head")
    each = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V")  # one head's weights and biases
    new = h.without_absent(fresh(h, data, {name: params[name].shape[1:] for name in each}))
    changed = {**params, **{name: np.concatenate([params[name][:t], new[name][None], params[name][t + 1:]])
                            for name in each}}
    after, _, after_tols = evaluate(h, changed, inputs)
    others = np.ones(d_model, bool)
    others[t * d_k:(t + 1) * d_k] = False
    h.compare({"out": after["out"][..., others]}, {"out": before["out"][..., others]},
              {"out": tols["out"].plus(after_tols["out"])},
              what=f"its own output before head {t}'s weights changed (W_O = I: other heads' columns stay)")


def check_fully_masked_row(h: Harness, data):
    """A query with no key visible has no value (the spec leaves it undefined, not compared): the
    other rows must still be right; what the subject gives there is reported."""
    params, inputs = h.draw(data)
    i = data.draw(st.integers(0, lengths(h, inputs)[0] - 1), label="fully masked query")
    if "attn_mask" in h.component.masks:
        inputs["attn_mask"] = inputs["attn_mask"].copy()
        inputs["attn_mask"][i] = True
    elif "per_query_mask" in h.lacks:  # key padding only: every key of batch row b padded, all its queries
        b = data.draw(st.integers(0, len(inputs["mask"]) - 1), label="fully padded batch row")
        inputs["mask"] = inputs["mask"].copy()
        inputs["mask"][b] = True
    else:
        inputs["mask"] = inputs["mask"].copy()
        inputs["mask"][:, i] = True
    actual, reference, tols = evaluate(h, params, inputs)
    h.compare(actual, reference, tols, case=(params, inputs))
    if "out" not in h.raw:
        return  # nothing was defined and the subject refused the call (reported by Harness.call)
    # as returned: actual has NaN where the spec has no value
    row = h.raw["out"][b] if "per_query_mask" in h.lacks else h.raw["out"][:, i]
    found = ("NaN" if np.isnan(row).all() else "zeros" if (row == 0).all()
             else "finite values" if np.isfinite(row).all() else "a mix of NaN and numbers")
    h.observations.add(f"a query with every key hidden gives {found}")


def mask_eid(h: Harness) -> str:
    """The mask equation a check of this subject's component bears on (a variant if declared)."""
    return next(e for e in all_eids(h) if e.startswith("mask."))


def mask_eids(h: Harness) -> tuple:
    return tuple(e for e in all_eids(h) if e.startswith("mask."))


def check_full_size(h: Harness, data):
    """One case, drawn from nothing: X = 0 of (1, 2048, 512), so out = P at the article's size."""
    params, inputs = {}, {"x": np.zeros(h.component.full_size)}
    h.examples += 1
    actual, reference, tols = evaluate(h, params, inputs)
    h.compare(actual, reference, tols, case=(params, inputs))
    slack = tol.floor(h.run.dtype)
    for name, value in actual.items():
        if np.abs(value).max() > 1 + slack:
            index = tuple(int(x) for x in np.unravel_index(np.abs(value).argmax(), value.shape))
            raise fail.outside(h.where(), "pe.input", name, value[index], list(index), -1.0, 1.0, slack)


def needing(*capabilities):
    """A check's `requires`: those of these capabilities a component names (what a subject may lack)."""
    return lambda component: tuple(c for c in capabilities if c in component.capabilities)


PERMUTATION = Check("permutation", "Permuting the queries permutes the output rows; permuting keys and values "
                    "together changes nothing.", all_eids, check_permutation)
HIDDEN_KEYS_IGNORED = Check("hidden_keys_ignored", "Output i is unchanged when keys and values hidden from query i, "
                            "or other queries, change; their autograd Jacobian is exactly 0.", mask_eids,
                            check_hidden_keys_ignored, requires=needing("mask", "cross_attention"))
PADDING_APPENDED = Check("padding_appended", "Appending padding keys (hidden from every query) changes nothing.",
                         mask_eids, check_padding_appended,
                         requires=needing("mask", "cross_attention", "key_padding"))
EQUAL_KEYS = Check("equal_keys", "All keys equal and none hidden: each output row is the mean of the values.",
                   all_eids, check_equal_keys, requires=needing("cross_attention"))
ONE_HEAD = Check("one_head", "One-head MHA equals single-head attention on the projections, times W_O, plus b_O.",
                 lambda h: ("mha.head", "mha.output"), check_one_head, lambda c: ("attention",))
HEAD_LOCALITY = Check("head_locality", "With W_O = I and b_O = 0, changing one head's weights and biases changes "
                      "only that head's columns.",
                      lambda h: ("mha.head", "mha.output"), check_head_locality)
FULLY_MASKED_ROW = Check("fully_masked_row", "A query with no key visible is undefined and not compared; the other "
                         "rows are right; what the subject gives there is reported.", mask_eids,
                         check_fully_masked_row, requires=needing("mask", "attn_mask"))
FULL_SIZE = Check("full_size", "At the article's 2048 positions × 512 columns, X = 0 gives P, which matches the "
                  "spec and lies in [-1, 1].", all_eids, check_full_size)


def yield_checks(component: Component):
    """The attention family's checks that apply to `component`, by its traits: queries and keys
    (attention), keys hidden from a query, masks given, heads, an article's size."""
    attends = component.queries is not None
    masked = attends and bool(component.masks)
    if attends and not component.causal:
        yield PERMUTATION
    if attends and component.hidden_keys is not None:
        yield HIDDEN_KEYS_IGNORED
    if masked:
        yield PADDING_APPENDED
        yield EQUAL_KEYS
    if attends and component.heads:
        yield ONE_HEAD
        yield HEAD_LOCALITY
    if masked:
        yield FULLY_MASKED_ROW
    if component.full_size is not None:
        yield FULL_SIZE
