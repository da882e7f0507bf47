"""The check `gradient` every component gets: the subject's autograd of ⟨cotangent, outputs⟩ equals
the spec's vector-Jacobian product (properties/engine/gradient.py) for every float input and
parameter, within the rule (tolerance.py); a failure names the E-id, the input or parameter, its
worst element, and whether the subject's backward computes in a lower dtype (lower_dtype.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .engine import failures as fail
from .engine import gradient as grad
from .engine import lower_dtype
from .engine import tolerance as tol
from .engine.diagnosis import reported
from .engine.harness import Harness
from .engine.strategies import Shape, arrays
from .engine.verdict import ill_conditioned
from .engine.within import judged
from .parameters import declared_absent, parameter_eid
from .profiles import dtype_name


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
            diagnosis = (f"precision: the subject's backward computes in {dtype_name(lower)} in a "
                         f"{dtype_name(h.run.dtype)} run (its error is what computing in it gives)")
            break
    variant = f"(variant {h.variant}) " if h.variant else ""
    return fail.gradient_mismatch(f"{variant}{h.where()}", eid, what, diagnosis, [
        f"worst element ∂/∂{name}{list(index)}: subject {value[index]:.17g}, spec {expected[index]:.17g}",
        bound.describe(), *(line for line in mismatch.splitlines() if line.strip())])
