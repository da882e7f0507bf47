"""The cases of a subject: one check of one component under one option set, what a test runs; their
ids and E-ids, and why a subject's offer or declaration rules one out (skip_reason, declared_reason).
"""
from __future__ import annotations

from dataclasses import dataclass

from nlpspec.subjects.protocol import Subject, option_label, option_sets

from .engine.absent import identity
from .engine.check import Check
from .engine.component import Component, declared, kind_for
from .engine.harness import Run
from .profiles import dtype_name
from .record import check_id
from .suite import generate


@dataclass(frozen=True)
class Case:
    """One check of one component of a subject, under one option set: what a test runs."""

    subject: Subject
    component: Component
    check: Check
    options: dict

    @property
    def eids(self) -> tuple[str, ...]:
        """The E-ids the check bears on, once the subject's declared variant is chosen."""
        kind = kind_for(self.component, declared(self.subject.variants.get(self.component.name), self.options))
        return tuple(self.check.eids(Target(self.component, kind)))

    @property
    def id(self) -> str:
        """The test id: component-check, the option set, then the E-ids (`pytest -k lstm.forget`)."""
        options = option_label(self.options, "-")
        return f"{check_id(self.component.name, self.check.name)}{'-' + options if options else ''}-{'+'.join(self.eids)}"


@dataclass(frozen=True)
class Target:
    """What a check's E-ids depend on: the component and the kind drawn (see Check.eids)."""

    component: Component
    kind: object


def cases(subject: Subject) -> list[Case]:
    """Every case the suite has for this subject, in a stable order."""
    return [Case(subject, component, check, options) for component, check in generate()
            for options in option_sets(subject, component)]


def skip_reason(subject: Subject, component: Component, check: Check) -> str:
    for name in (component.name, *check.needs(component)):
        if not subject.offers(name):
            return f"subject {subject.name!r} does not offer component {name}"
    return ""


def described(declaration, component: Component) -> list[str]:
    """The declaration in words, for the summary: what is not drawn, the constants, the absent parameters."""
    lines = [f"lacks {c}: {component.capabilities.get(c, '?')}" for c in declaration.lacks]
    lines += [f"{name} = {value!r}" for name, value in declaration.constants.items()]
    if declaration.absent:
        lines.append("no " + ", ".join(f"{name} (drawn as {identity(name):g})" for name in declaration.absent))
    if declaration.dtypes is not None or declaration.devices is not None:
        lines.append("runs in " + ", ".join(dtype_name(d) for d in declaration.dtypes or ("any dtype",))
                     + " on " + ", ".join(declaration.devices or ("any device",)))
    if declaration.note:
        lines.append(f"because: {declaration.note}")
    return lines


def declared_reason(run: Run, component: Component, check: Check) -> tuple[str, str]:
    """Why the subject's declaration rules this check out, in short and in full (("", "") if it does
    not): capabilities the check needs that the component lacks, or a dtype or device it does not run on."""
    declaration = run.subject.declaration(component.name, run.options)
    where = component.name + (f" [{option_label(run.options)}]" if option_label(run.options) else "")
    lacking = [c for c in check.requires(component) if c in declaration.lacks]
    if lacking:
        short = f"lacks {', '.join(lacking)}"
        return short, f"declared: {where} {short}: " + "; ".join(component.capabilities[c] for c in lacking)
    why = declaration.not_run(run.dtype, run.device, run.profile, check.name)
    if not why:
        return "", ""
    note = f" ({declaration.note})" if declaration.note else ""
    return why, f"declared: {where} {why}{note}"
