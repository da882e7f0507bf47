"""The Harness: one subject, one component, one run, as the checks see it (`h`). It composes one
part per job, each in its own module:

    cases.py      the case drawn and handed to the subject in its form
    driver.py     build, call, and the form of what comes back (SubjectFailure)
    oracle.py     the exact value and the tolerance rule's bounds (NumPy or the device, chosen once)
    precision.py  whether a lower precision explains a failure
    verdict.py    compare, and the one message of each kind of failure

and holds the state they share (below). `Run` says where and how the suite runs a subject.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from nlpspec.subjects.protocol import Subject, option_sets

from .cases import Cases
from .component import Component, declared, kind_for
from .driver import Driver
from .oracle import OracleSide
from .precision import Precision
from .verdict import Verdict


ANY_KIND = object()  # options_running's kind when any variant will do


def options_running(run: "Run", component: Component, kind=ANY_KIND) -> dict | None:
    """The option set under which the run's subject's `component` runs `kind` (the variant another
    component's check drew: a layer's cell, a stack's layer; any kind by default) in the run's dtype and
    on its device as the subject declares, the run's own options where they do; None if no option set
    does (a companion in a dtype its declaration rules out would judge what the subject disowns)."""
    subject = run.subject
    fitting = [options for options in option_sets(subject, component)
               if (kind is ANY_KIND or kind_for(component, declared(subject.variants.get(component.name), options)) == kind)
               and not subject.declaration(component.name, options).not_run(run.dtype, run.device)]
    return run.options if run.options in fitting else (fitting[0] if fitting else None)


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
    profile: str = ""                              # the Hypothesis profile's name ("": none named, the API)


class Harness(Cases, Driver, OracleSide, Precision, Verdict):
    """One subject, one component, one run: build, call and compare."""

    def __init__(self, run: Run, component: Component):
        self.run, self.component = run, component
        names = declared(run.subject.variants.get(component.name), run.options)
        self.variant = ", ".join(names)
        self.kind = kind_for(component, names)
        self.declaration = run.subject.declaration(component.name, run.options)
        self.lacks = frozenset(self.declaration.lacks)
        forms = [v for v in names if v in component.mask_forms]
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
