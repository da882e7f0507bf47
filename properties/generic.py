"""The checks every component gets: equal to the spec's oracle, deterministic, batch rows
independent, values within the ranges of the article's functions (each component states its
ranges and softmax outputs).

A check is a property of one component, run by Hypothesis on drawn cases. Each names the E-ids
it bears on, so the summary can say which equation a failure points at.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

from nlpspec.spec import CATALOGUE

from .engine import failures as fail
from .engine import gradient as grad
from .engine import lower_dtype
from .engine import tolerance as tol
from .engine.check import Check, all_eids, evaluate
from .engine.component import Component
from .engine.diagnosis import reported
from .engine.harness import Harness
from .engine.strategies import Shape, arrays, case
from .engine.trees import leaves
from .engine.verdict import ill_conditioned
from .engine.within import judged


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


def parameter_eid(h: Harness, path: str) -> str:
    """The E-id whose equation reads the parameter at `path` (by its last name), else the component."""
    name = path.rsplit(".", 1)[-1].split("[")[0]
    for eid in all_eids(h):
        entry = CATALOGUE.get(eid)
        if any(getattr(s, "name", None) == name for s in getattr(entry, "inputs", ())):
            return eid
    return h.component.name


def replaced(tree, path: str, value, prefix=""):
    """tree with the array at `path` (as trees.leaves names it) replaced by value."""
    if isinstance(tree, dict):
        return {k: replaced(v, path, value, f"{prefix}.{k}" if prefix else k) for k, v in tree.items()}
    if isinstance(tree, list):
        return [replaced(v, path, value, f"{prefix}[{i}]") for i, v in enumerate(tree)]
    return value if prefix == path else tree


def declared_absent(h: Harness, path: str) -> bool:
    """Whether the parameter at `path` (trees.leaves's name, at any depth) is one the subject
    declares absent: drawn as its identity, neither changed nor its gradient judged."""
    return path.rsplit(".", 1)[-1].split("[")[0] in h.declaration.absent


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


@dataclass
class GradientCase:
    """One case of the gradient check: the subject's vector-Jacobian products and the spec's, by
    input or parameter path, their bounds (tolerance.Deferred), and what made them."""

    params: dict
    inputs: dict
    cotangents: dict
    ties: list
    subject: dict
    expected: dict
    bounds: tol.Deferred


def gradient_case(h: Harness, data) -> GradientCase | None:
    """Draw a case, take the subject's autograd and the spec's VJP under a drawn cotangent, on the
    batch rows where the spec defines every output; None where nothing can be judged (no row
    defined, no autograd graph: noted)."""
    params, inputs = h.draw(data)
    reference = h.reference(params, inputs)
    rows = grad.defined_rows(reference, h.component.shared)
    if rows is not None:
        if not rows.any():
            h.unjudged()
            return None
        inputs, reference = (grad.rows_of(tree, rows, h.component.shared) for tree in (inputs, reference))
    actual = h.call(h.build(params, grad=True), inputs, reference, grad=True)
    given, out = h.graph
    returned = [name for name in actual if out[name].requires_grad]
    if not returned:
        h.unjudged("no autograd graph: the gradient check is not made")
        return None
    cotangents = h.round(arrays(data, {"cotangent": {name: Shape(reference[name].shape, 1.0)
                                                     for name in returned}})["cotangent"])
    subject = {path: g for path, g in subject_vjp(h, given, out, cotangents).items()
               if not (path.startswith("params.") and declared_absent(h, path))}
    if not subject:
        h.unjudged()
        return None
    ties = grad.tied_inputs(inputs)
    subject = grad.tied(subject, ties)
    expected = grad.spec_vjp(h.oracle, params, inputs, cotangents, device=h.run.device, ties=ties)
    expected = {path: expected[path] for path in subject}
    bounds = grad.tolerances(h.oracle, params, inputs, cotangents, expected, h.run.dtype, h.run.device, ties)
    return GradientCase(params, inputs, cotangents, ties, subject, expected, bounds)


def check_gradient(h: Harness, data):
    """The subject's autograd equals the spec's vector-Jacobian product (properties/engine/gradient.py)
    under a drawn cotangent, for every float input and parameter, on the batch rows where the spec
    defines every output."""
    found = gradient_case(h, data)
    if found is None:
        return
    for path, value in found.subject.items():
        expected = found.expected[path]
        if found.bounds.within_floor(path, value, expected):
            continue
        mismatch, bound = shrinking_verdict(value, expected, found.bounds[path]) or \
            judged(value, expected, found.bounds[path])
        if mismatch and tol.ill_conditioned(bound, expected):
            h.observations.add(ill_conditioned(f"the gradient of {path!r}", bound))
        elif mismatch:
            raise gradient_failure(h, path, value, expected, bound, mismatch,
                                   (found.params, found.inputs, found.cotangents), found.ties)


# An example that is not the one reported (a shrinking step) has its gradient judged on the bound's
# first sample where its error is this many times that bound: refining it to all the samples
# (tol.SAMPLES VJPs in rounded arithmetic) at every step made a wrong variant's shrinking take
# minutes (mha, Hypothesis's 300 s cap), and the samples' heavy-tailed spread is about 30 times at
# most (tolerance.py), far below it. The example reported is judged by the full rule.
BEYOND = 2.0**20


def shrinking_verdict(value, expected, bound: tol.Tolerance) -> tuple[str, tol.Tolerance] | None:
    """For an example that is not the one reported, a gradient whose error is BEYOND times its
    one-sample bound: (a mismatch, that bound), without the other samples; else None."""
    if reported() or tol.ill_conditioned(bound, expected):
        return None
    error = tol.max_abs_diff(value, expected)
    return (f"error {error:.3g}, beyond {BEYOND:.0e} times the bound", bound) if error > BEYOND * bound.atol else None


def subject_vjp(h: Harness, given: dict, out: dict, cotangents: dict) -> dict:
    """The subject's ∂⟨cotangents, outputs⟩/∂(each float parameter and input), as float64 arrays
    named as spec_vjp names them; a group (parameters, inputs) that autograd does not reach at all
    is left out and noted (an adapter that copies its parameters into a module of its own under
    torch.no_grad), and within a group that it reaches, an unreached tensor's gradient is 0."""
    __tracebackhide__ = True
    groups = {"params": [(path, t) for path, t, _ in h.params if t.requires_grad],
              "inputs": [(name, t) for name, t in given.items() if t.requires_grad]}
    wrt = [(f"{group}.{path}", t) for group, items in groups.items() for path, t in items]
    total = sum((out[name] * torch.as_tensor(c, dtype=out[name].dtype, device=out[name].device)).sum()
                for name, c in cotangents.items())
    with h.subject_code("the subject's backward pass"):  # a custom backward hangs, raises, changes state
        grads = torch.autograd.grad(total, [t for _, t in wrt], allow_unused=True)
    found = dict(zip((path for path, _ in wrt), grads))
    result = {}
    for group, items in groups.items():
        if items and all(found[f"{group}.{path}"] is None for path, _ in items):
            h.observations.add(f"autograd does not reach the {'parameters' if group == 'params' else 'inputs'}: "
                               f"their gradients are not checked")
            continue
        for path, t in items:
            g = found[f"{group}.{path}"]
            result[f"{group}.{path}"] = np.zeros(t.shape) if g is None else g.detach().to("cpu", torch.float64).numpy()
    return result


def gradient_failure(h: Harness, path: str, value, expected, bound, mismatch: str, case_, ties) -> fail.SubjectFailure:
    """The failure of one gradient: which equation, which input or parameter, which element, by how
    much, and whether the subject's backward computes in a lower precision (its gradient holds that
    dtype's numbers where it is off, and that dtype's error explains it)."""
    group, name = path.split(".", 1)
    what = f"{'parameter' if group == 'params' else 'input'} {name!r}"
    eid = parameter_eid(h, name) if group == "params" else h.output_eids.get(h.component.required[0],
                                                                             h.component.name)
    error, relative = tol.max_abs_diff(value, expected), lower_dtype.max_relative_diff(value, expected)
    index = tuple(int(i) for i in np.unravel_index(np.nanargmax(np.abs(value - expected)), value.shape))
    diagnosis = "value: the subject's backward computes another derivative than the spec's"
    with np.errstate(invalid="ignore"):
        off = np.abs(value - expected) > bound.atol
    for lower in lower_dtype.LOWER.get(h.run.dtype, ()) if reported() else ():  # a shrinking step: no diagnosis
        if not lower_dtype.returned_in(value[off], lower):  # its numbers are not that dtype's
            continue
        own = grad.spec_vjp(h.oracle, *case_, dtype=lower, device=h.run.device, ties=ties)[path]
        if lower_dtype.explained_by(error, relative, expected, own, lower):
            diagnosis = (f"precision: the subject's backward computes in {str(lower).removeprefix('torch.')} in a "
                         f"{str(h.run.dtype).removeprefix('torch.')} run (its error is what computing in it gives)")
            break
    variant = f"(variant {h.variant}) " if h.variant else ""
    return fail.gradient_mismatch(f"{variant}{h.where()}", eid, what, diagnosis, [
        f"worst element ∂/∂{name}{list(index)}: subject {value[index]:.17g}, spec {expected[index]:.17g}",
        bound.describe(), *(line for line in mismatch.splitlines() if line.strip())])


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
