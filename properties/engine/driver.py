"""Driving a subject: build it, call it, and check what comes back before any value is compared.

Everything a subject can get wrong that is not a value (its builder or callable raising, a
missing output, a wrong shape, dtype or device, NaN or Inf, inputs modified in place, outputs
that move between calls) becomes a `SubjectFailure` whose message names the subject and the
component. Part of the Harness (harness.py), whose state it reads and keeps: run, component,
params, built, calls, raw, defined, returned, graph, observations, begun, unjudged_examples.
"""
from __future__ import annotations

import numpy as np
import torch

from nlpspec.subjects.protocol import option_label

from . import diagnosis
from . import failures as fail
from . import tolerance as tol
from .containment import contained
from .failures import SubjectFailure
from .trees import leaves


def unchanged(before: torch.Tensor, after: torch.Tensor) -> bool:
    """Bit for bit the same, NaN included (an undefined row passed on by an earlier layer)."""
    return torch.equal(before, after) or (before.is_floating_point() and
                                          bool(((before == after) | (before.isnan() & after.isnan())).all()))


def unusual_tensor(value) -> str:
    """What makes `value` other than a plain dense tensor ("a nested tensor", "a tensor of layout
    torch.sparse_coo", "a MyTensor (a torch.Tensor subclass)", "a list"), or "" if it is one."""
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        return (f"a {type(value).__name__} (a torch.Tensor subclass)" if isinstance(value, torch.Tensor) else
                f"a {type(value).__name__}")
    if value.is_nested:
        return "a nested tensor"
    if value.layout != torch.strided:
        return f"a tensor of layout {value.layout}"
    return ""


class Driver:
    """Building and calling the subject, and the form of what it returns (a part of Harness)."""

    def where(self) -> str:
        opts = option_label(self.run.options, ", ")
        return f"subject {self.run.subject.name!r}, component {self.component.name}{', ' + opts if opts else ''}"

    def subject_code(self, who: str):
        """A context in which `who` (the adapter's builder, the subject, its backward pass) runs
        contained (containment.py): under the time limit, anything it raises or leaves changed its failure."""
        return contained(self.where(), who, self.run.time_limit)

    def unjudged(self, note: str = ""):
        """This example judges nothing (no autograd graph, no row defined): noted, and a check none of
        whose examples judged anything is not a pass (runner.execute)."""
        if note:
            self.observations.add(note)
        self.unjudged_examples.add(self.begun)

    def judged_nothing(self) -> bool:
        return self.begun > 0 and len(self.unjudged_examples) >= self.begun

    def build(self, params, grad: bool = False):
        """The subject's callable for these params; with grad, the float tensors given to the
        builder require grad (the gradient check differentiates with respect to them)."""
        __tracebackhide__ = True
        given = self.tensors(params)
        if grad:
            for _, t in leaves(given):
                if t.is_floating_point():
                    t.requires_grad_(True)
        self.params = [(path, t, t.clone()) for path, t in leaves(given)]  # checked after every call
        with self.subject_code("the adapter's builder"):
            fn = self.run.subject.builders[self.component.name](given, **self.run.options)
        if not callable(fn):
            raise fail.not_callable(self.where(), fn)
        self.built[id(fn)] = (fn, params)  # fn kept: its id stays its own
        return fn

    def call(self, fn, inputs, expected: dict, grad: bool = False) -> dict:
        """Call the subject's function; return its outputs as float64 arrays, checked for form. With
        grad, its float inputs require grad, and the tensors given and returned are kept in
        self.graph for the gradient check."""
        __tracebackhide__ = True
        given = self.tensors(inputs)
        if grad:  # the float inputs, not a mask in additive form
            for name, t in given.items():
                if inputs[name].dtype.kind == "f":
                    t.requires_grad_(True)
        kept = {name: t.clone() for name, t in given.items()}
        try:
            with self.subject_code("the subject"):
                out = fn(**given)
        except SubjectFailure as failure:
            exc = failure.__cause__
            if isinstance(exc, Exception) and expected and all(np.isnan(v).all() for v in expected.values()):
                # nothing is defined (every query of every sequence sees no key: an all-padded batch),
                # so anything goes, a refusal included; what the subject did is reported
                reason = (fail.said(exc).splitlines() or [""])[0][:120].replace(";", ",")
                self.observations.add(f"raises {type(exc).__name__} where the spec defines no output at all "
                                      f"({reason})")
                return {name: np.full(v.shape, np.nan) for name, v in expected.items()}
            raise
        for name, before in kept.items():
            if not unchanged(before, given[name]):
                raise fail.modified(self.where(), "input", name)
        for path, tensor, before in self.params:
            if not unchanged(before, tensor):
                raise fail.modified(self.where(), "parameter", path)
        if isinstance(out, torch.Tensor) and len(self.component.required) == 1:
            out = {self.component.required[0]: out}
        if not isinstance(out, dict):
            raise fail.form(self.where(), f"returned a {type(out).__name__}; expected a dict of tensors with "
                                          f"{', '.join(self.component.required)}")
        missing = [name for name in self.component.required if name not in out]
        if missing:
            raise fail.form(self.where(), f"returned no {', '.join(map(repr, missing))} "
                                          f"(it returned {', '.join(map(repr, out)) or 'nothing'})")
        unknown = [name for name in out if name not in expected]
        if unknown:
            raise fail.form(self.where(), f"returned {', '.join(map(repr, unknown))}, which the spec does not define "
                                          f"for {self.component.name}; known outputs: {', '.join(expected)}")
        case = (self.built.get(id(fn), (None, None))[1], inputs)
        found = {name: self.to_numpy(name, out[name], expected[name], case) for name in expected if name in out}
        if grad:
            self.graph = (given, out)
        self.defined.update(expected)
        self.returned.update(found)
        self.calls.append((fn, inputs, expected, {name: self.raw[name].copy() for name in found},
                           self.built.get(id(fn), (None, None))[1]))
        return found

    def unreturned(self) -> list[str]:
        """The E-ids of the outputs the spec defines that the subject never returned (its gates, its
        attention weights): those equations were judged only through the outputs it did return."""
        eids = self.output_eids
        judged = {eids[name] for name in self.returned if name in eids}
        return sorted({eids[name] for name in self.defined - self.returned if name in eids} - judged)

    def begin_example(self):
        """A new Hypothesis example: forget the calls of the last one."""
        self.calls, self.built = [], {}
        self.begun += 1

    def nondeterminism(self) -> SubjectFailure | None:
        """None if every call of this example gives bit for bit the same outputs again; else the
        failure that says what differs (a subject whose outputs move between calls is not
        deterministic: dropout, state kept)."""
        for fn, inputs, expected, outputs, _ in self.calls[:]:
            self.call(fn, inputs, expected)
            for name, first in outputs.items():
                second = self.raw[name]
                if not np.array_equal(first, second, equal_nan=True):
                    diff = float(np.nanmax(np.abs(first - second))) if first.size else 0.0
                    return fail.nondeterministic(self.where(), name, diff)
        return None

    def to_numpy(self, name, value, expected: np.ndarray, case=(None, None)) -> np.ndarray:
        __tracebackhide__ = True
        where, output = self.where(), f"output {name!r}"
        unusual = unusual_tensor(value)
        if unusual:
            raise fail.form(where, f"{output} is {unusual}, not a plain (strided, dense) torch.Tensor")
        if tuple(value.shape) != expected.shape:
            raise fail.form(where, f"{output} has shape {tuple(value.shape)}, but should be {expected.shape}")
        if value.dtype != self.run.dtype:
            lower = value.dtype.is_floating_point and tol.eps(value.dtype) > tol.eps(self.run.dtype)
            raise fail.form(where, f"{output} has dtype {value.dtype}, but was asked for {self.run.dtype}"
                            + (" (it returns a lower precision than it was given)" if lower else ""))
        if value.device != self.run.device:
            raise fail.form(where, f"{output} is on {value.device}, but the suite runs on {self.run.device}")
        array = value.detach().to("cpu", torch.float64).numpy()
        bad = ~np.isfinite(array) & np.isfinite(expected)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            found = diagnosis.suggestion(self, case, name, array, None, index) \
                if case[0] is not None and diagnosis.reported() else ""
            failure = fail.not_finite(where, self.output_eids.get(name, self.component.name), name, array[index],
                                      index, expected[index], found)
            failure.values = {name: array}  # for the diagnosis of another case's failure
            raise failure
        self.raw[name] = array
        return np.where(np.isnan(expected), np.nan, array)  # undefined in the spec: never compared
