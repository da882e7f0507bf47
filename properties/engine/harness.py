"""Driving a subject safely: build, call, and check what comes back before comparing values.

Everything a subject can get wrong that is not a value (its builder or callable raising, a
missing output, a wrong shape, dtype or device, NaN or Inf, inputs modified in place) becomes a
`SubjectFailure` whose message names the subject and the component; the values are compared by
`compare`, with the tolerance rule of properties/engine/tolerance.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from nlpspec.subjects.protocol import Subject, option_label, option_sets

from . import diagnosis
from . import failures as fail
from . import tolerance as tol
from .cases import Cases
from .component import MASK_FORMS, Component, declared, kind_for
from .containment import contained
from .failures import SubjectFailure
from .oracle import OracleSide
from .precision import Precision
from .trees import leaves
from .verdict import Verdict


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


def options_running(subject: Subject, component: Component, kind, prefer: dict) -> dict | None:
    """The option set under which the subject's `component` runs `kind` (the variant another
    component's check drew: a layer's cell, a stack's layer), `prefer` itself where it does; None
    if no option set does."""
    fitting = [options for options in option_sets(subject, component)
               if kind_for(component, declared(subject.variants.get(component.name), options)) == kind]
    return prefer if prefer in fitting else (fitting[0] if fitting else None)


@dataclass
class Run:
    """Where and how the suite runs a subject."""

    subject: Subject
    device: torch.device
    dtype: torch.dtype
    options: dict = field(default_factory=dict)   # the subject's own knobs for this component
    reproduce: Callable[[str], str] | None = None  # replay blob -> a command line that reruns this example
    time_limit: float = 0.0                        # seconds a build or a call may take (0: no limit)
    scale: bool = False                            # draw the scale profile's sizes (strategies.at_scale)


class Harness(Cases, OracleSide, Precision, Verdict):
    """One subject, one component, one run: build, call and compare."""

    def __init__(self, run: Run, component: Component):
        self.run, self.component = run, component
        names = declared(run.subject.variants.get(component.name), run.options)
        self.variant = ", ".join(names)
        self.kind = kind_for(component, names)
        self.declaration = run.subject.declaration(component.name, run.options)
        self.lacks = frozenset(self.declaration.lacks)
        forms = [v for v in names if v in MASK_FORMS]
        self.mask_form = forms[0] if forms else "additive"
        self.oracle = component.oracle(self.kind)
        self.output_eids = component.outputs_of(self.kind)
        self.examples = 0
        self.params: list = []  # (path, tensor given to the builder, its copy), set by build
        self.observations: set[str] = set()  # what the subject does where the spec leaves it open
        self.raw: dict = {}  # the last call's outputs as returned, undefined entries included
        self.defined: set[str] = set()   # outputs the spec defines for the calls made, and
        self.returned: set[str] = set()  # those the subject returned
        self.calls: list = []  # this example's calls: (fn, inputs, expected, outputs as returned, params)
        self.built: dict = {}  # id of each built callable -> the params it was built with
        self.companions: list = []  # harnesses of the other components this check drives (companion)
        self.graph: tuple = ({}, {})  # the last call with grad: (its input tensors, its outputs as returned)
        self.begun = 0  # examples begun (begin_example)
        self.unjudged_examples: set[int] = set()  # those in which the check judged nothing (unjudged)
        self.diagnosing = False  # within diagnosis.suggestion: its fresh cases are not diagnosed again

    def companion(self, component: Component, options: dict) -> "Harness":
        """A harness for another component the check drives (a layer's cell, a stack's layer) under
        the same run; its calls count in this one's precision diagnosis."""
        other = Harness(replace(self.run, options=options), component)
        self.companions.append(other)
        return other

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

    def where(self) -> str:
        opts = option_label(self.run.options, ", ")
        return f"subject {self.run.subject.name!r}, component {self.component.name}{', ' + opts if opts else ''}"

    # -- the subject -----------------------------------------------------------------------
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
