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

from nlpspec.spec.oracle import rounding
from nlpspec.subjects.protocol import Subject, option_label, option_sets

from . import device_oracle, diagnosis
from .absent import identity
from . import failures as fail
from . import tolerance as tol
from .containment import contained
from .failures import SubjectFailure
from .rounding import Rounded, rounded_arithmetic
from .strategies import at_scale, overflow_at
from .trees import leaves, nested_map
from .verdict import Verdict
from .within import judged
from .component import MASK_FORMS, Component, declared, kind_for


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


def on_values(fn):
    """fn applied to the float arrays of a case; masks (boolean arrays) pass through unchanged."""
    return lambda a: fn(a) if a.dtype.kind == "f" else a


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


class Harness(Verdict):
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

    # -- cases -----------------------------------------------------------------------------
    def draw(self, data, draw=None):
        """A case, rounded to the run's dtype: float64 arrays holding values exact in that dtype; only
        what the subject takes (its declared lacks), its absent parameters their identity (0 or 1).
        `draw`: another way than the component's to draw it (same signature)."""
        draw = draw or self.component.draw
        with overflow_at(float(np.log(torch.finfo(self.run.dtype).max))), at_scale(self.run.scale):
            params, inputs = draw(data, self.kind, lacks=self.lacks) if self.component.capabilities else \
                draw(data, self.kind)
        self.examples += 1
        return self.round(self.without_absent(params)), self.round(inputs)

    def without_absent(self, params):
        """params with every parameter the subject declares absent (at any depth, by name) set to its
        identity: 0 for one that is added, 1 for one that multiplies (absent.identity). The names are
        checked at load (declarations.validate)."""
        absent = set(self.declaration.absent)
        if not absent:
            return params

        def left_out(tree):
            if isinstance(tree, dict):
                return {k: np.full_like(v, identity(k)) if k in absent and not isinstance(v, (dict, list))
                        else left_out(v) for k, v in tree.items()}
            if isinstance(tree, list):
                return [left_out(v) for v in tree]
            return tree
        return left_out(params)

    def round(self, tree):
        return nested_map(on_values(lambda a: torch.from_numpy(a).to(self.run.dtype).double().numpy()), tree)

    def tensors(self, tree):
        """Torch tensors on the run's device: values in its dtype, token ids as int64, masks in the
        subject's declared form."""
        return nested_map(lambda a: self.mask(a) if a.dtype == bool else torch.from_numpy(a).to(self.run.device)
                          if a.dtype.kind in "iu" else torch.from_numpy(np.ascontiguousarray(a)).to(
                              device=self.run.device, dtype=self.run.dtype), tree)

    def mask(self, hidden: np.ndarray) -> torch.Tensor:
        """The spec's mask (True: hidden) in the subject's form: additive float (0 or -inf, the
        article's), or booleans, True where hidden (mask.bool_true_masked) or visible (…_attends)."""
        hidden = torch.from_numpy(np.ascontiguousarray(hidden)).to(self.run.device)
        if self.mask_form == "mask.bool_true_masked":
            return hidden
        if self.mask_form == "mask.bool_true_attends":
            return ~hidden
        zero = torch.zeros((), dtype=self.run.dtype, device=self.run.device)
        return torch.where(hidden, zero - torch.inf, zero)

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

    # -- oracle and comparison -------------------------------------------------------------
    def reference(self, params, inputs) -> dict:
        if device_oracle.runs_on_device(params, inputs, self.run.device):
            return device_oracle.evaluate(self.oracle, params, inputs, torch.float64, self.run.device)
        return self.oracle(params, inputs)

    def tolerances(self, params, inputs, reference: dict) -> dict:
        """The tolerance rule for each output of this case (see properties/engine/tolerance.py): judged on
        one sample of rounded arithmetic, refined where a subject is outside it (Tolerance.final)."""
        return tol.Deferred(lambda: self.bounds(params, inputs, reference), reference, self.run.dtype)

    def bounds(self, params, inputs, reference: dict) -> dict:
        dtype = self.run.dtype
        if device_oracle.runs_on_device(params, inputs, self.run.device):
            baseline = device_oracle.evaluate(self.oracle, params, inputs, tol.baseline_dtype(dtype), self.run.device)
        else:
            cast = tol.numpy_dtype(tol.baseline_dtype(dtype))
            baseline = self.oracle(nested_map(on_values(lambda a: a.astype(cast)), params),
                                   nested_map(on_values(lambda a: a.astype(cast)), inputs))
        return tol.bounds(reference, baseline, tol.Samples(lambda seed: self.rounded_oracle(params, inputs, seed)), dtype)

    def rounded_oracle(self, params, inputs, seed: int) -> dict:
        """One sample of the oracle in rounded arithmetic: every input and every intermediate value
        rounded once more, with random signs drawn from `seed` (properties/engine/rounding.py)."""
        if device_oracle.runs_on_device(params, inputs, self.run.device):
            return device_oracle.rounded(self.oracle, params, inputs, self.run.dtype, self.run.device, seed)
        dtype, rng = self.run.dtype, np.random.default_rng(seed)

        def rounded(a):  # one rounding of an input, then rounded arithmetic on it
            return tol.perturb(a, dtype, rng).view(Rounded)
        with rounding(rounded), rounded_arithmetic(tol.eps(dtype), rng):  # every equation's inputs, every result
            out = self.oracle(nested_map(on_values(rounded), params), nested_map(on_values(rounded), inputs))
        return {name: np.asarray(value) for name, value in out.items()}

    def returned_lower(self, value: np.ndarray, off: np.ndarray):
        """The lower dtype whose numbers the subject returned, or None (see tolerance.returned_in):
        wherever this output disagrees (`off`), or in the whole of another output of its last call
        (PyTorch's tutorial computes P in float32 and adds it to X in float64). How a subject computing
        in a lower precision is told from one that computes another function, in any check."""
        seen = [value[off]] + [a.ravel() for a in self.raw.values() if a.shape != value.shape or not
                               np.array_equal(a, value, equal_nan=True)]
        return next((lower for lower in tol.LOWER.get(self.run.dtype, ())
                     if any(tol.returned_in(found, lower) for found in seen)), None)

    def lower_dtype_shown(self, value: np.ndarray, off: np.ndarray):
        """For a check that is not the oracle: the lower dtype the subject's numbers (where `off`) or
        its calls on this example against the oracle show it computes in, or None."""
        return self.returned_lower(value, off) or self.precision_of_calls()

    def lower_precision(self, case, name: str, value: np.ndarray, expected: np.ndarray, atol: float):
        """The lower dtype the subject computes in, as this output of the oracle comparison on `case`
        shows, or None: it returns that dtype's numbers and its error is one computing in it gives, or
        (for a lower dtype whose rounding is finer than the grid of the drawn values, float32 under
        float64) its error is within that dtype's, here and on fresh cases. A float16 error is of the
        size of that grid, so under float32 only the numbers tell."""
        with np.errstate(invalid="ignore"):
            lower = self.returned_lower(value, np.abs(value - expected) > atol)
        if lower is not None:
            return lower if self.explained_in(lower, case, name, value, expected) else None
        return next((lower for lower in tol.LOWER.get(self.run.dtype, ()) if tol.eps(lower) < tol.GRID / 16
                     and self.explained_in(lower, case, name, value, expected, smallest=False)
                     and self.within_lower_on_fresh_cases(lower, case)), None)

    FRESH_CASES = 8

    def within_lower_on_fresh_cases(self, lower, case) -> bool:
        """On FRESH_CASES new cases of the same shapes (every float entry uniform in [-1, 1], masks and
        token ids kept, inputs that were equal kept equal), is the subject's error always within what
        computing in `lower` gives? A wrong equation can be tiny on a shrunk case; on generic values it
        is not, while a subject computing (partly) in `lower` stays within it."""
        rng, kept = np.random.default_rng(0), (list(self.calls), dict(self.raw))
        try:
            for _ in range(self.FRESH_CASES):
                params = self.round(self.without_absent(nested_map(
                    on_values(lambda a: rng.uniform(-1, 1, a.shape)), case[0])))
                inputs, drawn = {}, []
                for key, a in case[1].items():
                    same = next((inputs[k] for k, b in drawn if b.shape == a.shape and np.array_equal(a, b)), None)
                    inputs[key] = same if same is not None else a if a.dtype.kind != "f" else \
                        self.round(rng.uniform(-1, 1, a.shape))
                    drawn.append((key, a))
                expected = self.oracle(params, inputs)
                try:
                    actual = self.call(self.build(params), inputs, expected)
                except SubjectFailure:
                    return False
                if not all(self.explained_in(lower, (params, inputs), name, value, expected[name], smallest=False)
                           for name, value in actual.items()):
                    return False
            return True
        finally:
            self.calls, self.raw = kept

    def precision_of_calls(self):
        """For a check that compares the subject with itself: the lower dtype its calls on this example
        show against the oracle (the first output outside the tolerance), or None if they show none."""
        for other in self.companions:
            found = other.precision_of_calls()
            if found is not None:
                return found
        for _, inputs, expected, outputs, params in self.calls:
            if params is None:
                continue
            bounds = self.tolerances(params, inputs, expected)
            for name, value in outputs.items():
                undefined = np.isnan(expected[name]) | np.isnan(value)
                value, reference = np.where(undefined, np.nan, value), np.where(undefined, np.nan, expected[name])
                mismatch, bound = judged(value, reference, bounds[name])
                if mismatch and not tol.ill_conditioned(bound, reference):
                    return self.lower_precision((params, inputs), name, value, reference, bound.atol)
        return None

    def explained_in(self, lower, case, name: str, value: np.ndarray, reference: np.ndarray,
                     smallest: bool = True) -> bool:
        """Does rounding in `lower` explain the error of an output of the oracle check?"""
        error, relative = tol.max_abs_diff(value, reference), tol.max_relative_diff(value, reference)
        cast = tol.numpy_dtype(lower)
        params, inputs = (nested_map(on_values(lambda a: a.astype(cast)), part) for part in case)
        return tol.explained_by(error, relative, reference, self.oracle(params, inputs)[name], lower, smallest)
