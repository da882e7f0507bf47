"""A subject's declarations checked before any check runs: every component, variant, option and
expected-failure id it names must be one the suite knows. A misspelt name would otherwise mean a
check silently never run; here it is a usage error of one line that names it and lists what is
known (with the closest known name, if one is close).
"""
from __future__ import annotations

import difflib
import inspect

import torch

from nlpspec.subjects import Declaration, Subject
from nlpspec.subjects.registry import SubjectLoadError

from .engine.component import declared, kind_for
from .engine.harness import named_sets, option_sets
from .suite import COMPONENTS, generate


def unknown(kind: str, name: str, known, where: str) -> SubjectLoadError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SubjectLoadError(f"{where}: unknown {kind} {name!r}{hint}; known: {', '.join(known) or 'none'}")


def validate(subject: Subject) -> None:
    """Raise SubjectLoadError, one line, on the first name the suite does not know."""
    where = f"subject {subject.name!r}"
    for name in (*subject.builders, *subject.variants, *subject.options, *subject.declarations):
        if name not in COMPONENTS:
            raise unknown("component", name, COMPONENTS, where)
    for name in (*subject.variants, *subject.options, *subject.declarations):
        if name not in subject.builders:
            what = "variants" if name in subject.variants else "options" if name in subject.options else "a declaration"
            raise SubjectLoadError(f"{where} declares {what} for {name}, which it does not offer "
                                   f"(its builders: {', '.join(subject.builders)})")
    for name in subject.declarations:
        for options in option_sets(subject, COMPONENTS[name]):
            check_declaration(subject, COMPONENTS[name], options, f"{where}, component {name}")
    for name, knobs in subject.options.items():
        accepts = _keywords(subject.builders[name])
        if named_sets(knobs):
            used = {knob for knob_values in knobs.values() for knob in knob_values}
        else:
            used = set(knobs)
            for knob, values in knobs.items():
                if not isinstance(values, (list, tuple)) or not values:
                    raise SubjectLoadError(f"{where}, component {name}: option {knob!r} lists no values (give a "
                                           f"list of values to sweep, e.g. {{{knob!r}: [True, False]}}, or named "
                                           f"option sets, e.g. {{'fused': {{{knob!r}: True, 'other': 1}}}})")
        for knob in sorted(used):
            if accepts is not None and knob not in accepts:
                raise unknown("option", knob, accepts, f"{where}, component {name} (its builder's keywords)")
    for name in subject.variants:
        component = COMPONENTS[name]
        for options in option_sets(subject, component):
            try:
                kind_for(component, declared(subject.variants[name], options))
            except ValueError as exc:
                raise SubjectLoadError(f"{where}: {exc}") from None
    ids = {f"{component.name}-{check.name}" for component, check in generate() if subject.offers(component.name)}
    for name in subject.expected_failures:
        if name not in ids:
            raise unknown("expected-failure id", name, sorted(ids), where)


def check_declaration(subject: Subject, component, options: dict, where: str) -> None:
    """A declaration names only capabilities the component has and constants its oracle reads."""
    try:
        declaration = subject.declaration(component.name, options)
    except Exception as exc:
        raise SubjectLoadError(f"{where}: its declaration raised {type(exc).__name__}: {exc}") from None
    if not isinstance(declaration, Declaration):
        raise SubjectLoadError(f"{where}: a declaration is a nlpspec.Declaration, not a {type(declaration).__name__}")
    for capability in declaration.lacks:
        if capability not in component.capabilities:
            raise unknown("capability", capability, component.capabilities, where)
    for constant, value in declaration.constants.items():
        if constant not in component.constants:
            raise unknown("constant", constant, component.constants, where)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SubjectLoadError(f"{where}: constant {constant!r} is {value!r}; give a number")
    for dtype in declaration.dtypes or ():
        if not isinstance(dtype, torch.dtype):
            raise SubjectLoadError(f"{where}: dtypes lists {dtype!r}; give torch dtypes (torch.float32, …)")


def _keywords(builder) -> list[str] | None:
    """The keyword parameters a builder takes after its params; None if it takes **kwargs."""
    try:
        parameters = list(inspect.signature(builder).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
