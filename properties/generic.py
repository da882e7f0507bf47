"""The checks every component gets: equal to the spec's oracle, deterministic, batch rows
independent, values within the ranges of the article's functions (each component states its
ranges and softmax outputs), every parameter read, and the gradient (its body in gradient_check.py).

A check is a property of one component, run by Hypothesis on drawn cases. Each names the E-ids
it bears on, so the summary can say which equation a failure points at.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .engine import failures as fail
from .engine import tolerance as tol
from .engine.check import Check, all_eids, evaluate
from .engine.component import Component
from .engine.harness import Harness
from .engine.strategies import Shape, case
from .engine.trees import leaves
from .gradient_check import check_gradient
from .parameters import declared_absent, parameter_eid, replaced


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


def check_bounds(h: Harness, data):
    params, inputs = h.draw(data)
    actual, _, _ = evaluate(h, params, inputs)
    slack = tol.floor(h.run.dtype)  # (1 - z) h + z h̃ may round a hair past 1
    bounds = h.component.bounds
    for name, value in actual.items():
        if name not in bounds:
            continue
        low, high = bounds[name]
        outside = (value < low - slack) | (value > high + slack)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            failure = fail.outside(h.where(), h.output_eids.get(name, h.component.name), name, value[index],
                                   list(index), low, high, slack)
            lower = h.lower_dtype_shown(value, outside)
            if lower is not None and not ((value < low - tol.floor(lower)) | (value > high + tol.floor(lower))).any():
                raise fail.lower_precision(failure, lower, h.run.dtype)
            raise failure
    for name in h.component.probabilities:
        if name in actual:
            probability_rows(h, name, actual[name], inputs)


def probability_rows(h: Harness, name: str, value: np.ndarray, inputs):
    """Each softmax row sums to 1 and gives hidden keys exactly 0 (rows with no key visible: not checked)."""
    eid = h.output_eids.get(name, h.component.name)
    hidden = h.component.hidden_keys(h.kind, inputs) if h.component.hidden_keys else None
    if hidden is not None:
        hidden = np.broadcast_to(hidden if name != "mean_weights" else hidden[:, 0], value.shape)
        defined = ~hidden.all(axis=-1)
        leaked = hidden & (value != 0) & defined[..., None]
        if leaked.any():
            index = tuple(int(i) for i in np.argwhere(leaked)[0])
            raise fail.masked_weight(h.where(), eid, name, value[index], list(index))
    else:
        defined = np.ones(value.shape[:-1], dtype=bool)
    sums = value.sum(axis=-1)
    floor = tol.floor(h.run.dtype, value.shape[-1])
    off = defined & (np.abs(sums - 1) > floor)
    if off.any():
        index = tuple(int(i) for i in np.argwhere(off)[0])
        failure = fail.not_a_distribution(h.where(), eid, name, sums[index], list(index), floor)
        lower = h.lower_dtype_shown(value, np.ones(value.shape, bool))
        if lower is not None and not (defined & (np.abs(sums - 1) > tol.floor(lower, value.shape[-1]))).any():
            raise fail.lower_precision(failure, lower, h.run.dtype)
        raise failure


def check_parameters_read(h: Harness, data):
    """Each parameter is read: changing one (drawn; the examples cover the others) to a fresh draw of
    the same shape changes the subject's output wherever it moves the spec's by more than twice the
    tolerance (b_K, which the softmax cancels, moves nothing and asks nothing)."""
    params, inputs = h.draw(data)
    paths = [path for path, a in leaves(params) if a.dtype.kind == "f" and not declared_absent(h, path)]
    if not paths:
        return
    fn, reference = h.build(params), h.reference(params, inputs)
    before, tols = h.call(fn, inputs, reference), h.tolerances(params, inputs, reference)
    path = data.draw(st.sampled_from(paths), label="parameter changed")
    shape = dict(leaves(params))[path].shape
    new = h.round(case(data, {}, {"p": Shape(shape, 1.0)})[1])["p"]
    changed = replaced(params, path, new)
    changed_reference = h.reference(changed, inputs)
    after = h.call(h.build(changed), inputs, changed_reference)
    for name, value in after.items():
        moved = float(np.nanmax(np.abs(changed_reference[name] - reference[name]), initial=0.0))
        if np.array_equal(value, before[name], equal_nan=True) and moved > 2 * tols[name].atol:  # bounds if need be
            bound = 2 * tols[name].final(moved / 2).atol  # all samples of the rule, before a verdict
            if moved > bound:
                failure = fail.not_read(h.where(), parameter_eid(h, path), path, name, moved, bound)
                lower = h.lower_dtype_shown(value, np.ones(value.shape, bool))
                if lower is not None and moved <= tol.floor(lower, tol.scale_of(reference[name])):
                    raise fail.lower_precision(failure, lower, h.run.dtype)  # a change below its rounding
                raise failure


ORACLE = Check("oracle", "Equals the spec's oracle on drawn shapes and values.", all_eids, check_oracle)
DETERMINISM = Check("determinism", "Two calls on the same inputs give identical outputs.", all_eids,
                    check_determinism)
BATCH_INDEPENDENCE = Check("batch_independence", "Row b of a batched run equals the run on row b alone.", all_eids,
                           check_batch_independence)
PARAMETERS_READ = Check("parameters_read", "Changing any parameter changes the output wherever it changes the spec's.",
                        all_eids, check_parameters_read)
# A fifth of the examples: its backward mutants were caught within 3 examples of ci's 50, and its four
# vector-Jacobian products per example doubled the default suite's time (issue 13's budget)
GRADIENT = Check("gradient", "The subject's autograd equals the spec's vector-Jacobian product for every float "
                 "input and parameter.", all_eids, check_gradient, share=0.2)
BOUNDS = Check("bounds", "tanh states lie in [-1, 1], gates and probabilities in [0, 1], softmax rows sum to 1.",
               all_eids, check_bounds)


def yield_checks(component: Component):
    """The checks of every component (and GRADIENT, which the suite runs last: properties/suite.py)."""
    yield ORACLE
    yield DETERMINISM
    yield BATCH_INDEPENDENCE
    yield BOUNDS
    if component.has_parameters:
        yield PARAMETERS_READ
