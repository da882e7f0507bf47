"""A subject's declarations checked before any check runs: every component, variant, option and
expected-failure id it names must be one the suite knows. A misspelt name would otherwise mean a
check silently never run; here it is a usage error of one line that names it and lists what is
known (with the closest known name, if one is close). So is a declaration that would make checks
vacuous or wrong: a field of the wrong type, a constant that is not finite or outside its domain
(a NaN ε makes the oracle NaN, which is never compared), dtypes or devices that leave a component
no run, an absent parameter the component does not have or that has no identity to be drawn as (a
weight matrix), and an expected failure of a check the declaration itself rules out.
"""
from __future__ import annotations

import difflib
import inspect
import math
from functools import cache

import torch

from nlpspec.spec.constants import DOMAINS
from nlpspec.subjects.protocol import Declaration, Subject, SubjectLoadError, named_sets, option_sets

from .engine.absent import identity
from .engine.component import declared, kind_for
from .engine.trees import leaves
from .profiles import DTYPES, dtype_name
from .suite import COMPONENTS, generate


def unknown(kind: str, name: str, known, where: str) -> SubjectLoadError:
    close = difflib.get_close_matches(name, list(known), n=1) if isinstance(name, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return SubjectLoadError(f"{where}: unknown {kind} {name!r}{hint}; known: {', '.join(known) or 'none'}")


def validate(subject: Subject) -> None:
    """Raise SubjectLoadError, one line, on the first name the suite does not know or the first
    declaration that makes no sense."""
    where = f"subject {subject.name!r}"
    check_fields(subject, where)
    for name in (*subject.builders, *subject.variants, *subject.options, *subject.declarations):
        if name not in COMPONENTS:
            raise unknown("component", name, COMPONENTS, where)
    for name in (*subject.variants, *subject.options, *subject.declarations):
        if name not in subject.builders:
            what = "variants" if name in subject.variants else "options" if name in subject.options else "a declaration"
            raise SubjectLoadError(f"{where} declares {what} for {name}, which it does not offer "
                                   f"(its builders: {', '.join(subject.builders)})")
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
    for name in subject.declarations:
        for options in option_sets(subject, COMPONENTS[name]):
            check_declaration(subject, COMPONENTS[name], options, f"{where}, component {name}")
    ids = {f"{component.name}-{check.name}" for component, check in generate() if subject.offers(component.name)}
    for name in subject.expected_failures:
        if name not in ids:
            raise unknown("expected-failure id", name, sorted(ids), where)
        check_expected_failure_runs(subject, name, where)


def check_fields(subject: Subject, where: str) -> None:
    """Each field of the Subject is of its type: a builder per component, dicts keyed by component."""
    if not isinstance(subject.builders, dict):
        raise SubjectLoadError(f"{where}: builders is a {type(subject.builders).__name__}; give a dict "
                               f"{{component: builder}}, e.g. {{'layernorm': build_layernorm}}")
    for field in ("variants", "expected_failures", "options", "declarations"):
        value = getattr(subject, field)
        if not isinstance(value, dict):
            raise SubjectLoadError(f"{where}: {field} is a {type(value).__name__}; give a dict keyed by "
                                   f"{'check id' if field == 'expected_failures' else 'component'}")
    for name, given in subject.variants.items():
        if not (callable(given) or isinstance(given, str) or isinstance(given, (tuple, list)) and
                all(isinstance(v, str) for v in given)):
            raise SubjectLoadError(f"{where}, component {name}: its variants are {given!r}; give an E-id, a tuple of "
                                   f"them, or a function of the option set returning them")
    for name, knobs in subject.options.items():
        if not isinstance(knobs, dict):
            raise SubjectLoadError(f"{where}, component {name}: its options are {knobs!r}; give a dict of knobs to "
                                   f"sweep, e.g. {{'batch_first': [True, False]}}, or of named option sets")
    for name, builder in subject.builders.items():
        if not callable(builder):
            raise SubjectLoadError(f"{where}, component {name}: its builder is a {type(builder).__name__}; give "
                                   f"a function of the parameters returning the component's callable")


def check_expected_failure_runs(subject: Subject, check_id: str, where: str) -> None:
    """An expected failure of a check the declaration rules out in every option set contradicts it."""
    component, check = next((c, k) for c, k in generate() if f"{c.name}-{k.name}" == check_id)
    needs = set(check.requires(component))
    lacked = [sorted(needs & set(subject.declaration(component.name, options).lacks))
              for options in option_sets(subject, component)]
    if all(lacked):
        raise SubjectLoadError(f"{where}, component {component.name}: declares {check_id} an expected failure, but "
                               f"also that it lacks {', '.join(lacked[0])}, which that check needs: it never runs")


def check_declaration(subject: Subject, component, options: dict, where: str) -> None:
    """A declaration names only capabilities the component has and constants its oracle reads."""
    try:
        declaration = subject.declaration(component.name, options)
    except Exception as exc:
        raise SubjectLoadError(f"{where}: its declaration raised {type(exc).__name__}: {exc}") from None
    if not isinstance(declaration, Declaration):
        raise SubjectLoadError(f"{where}: a declaration is a nlpspec.Declaration, not a {type(declaration).__name__}")
    for field in ("lacks", "absent", "dtypes", "devices", "profiles", "checks"):
        value = getattr(declaration, field)
        if not isinstance(value, (tuple, list)) and (value is not None or field in ("lacks", "absent", "checks")):
            raise SubjectLoadError(f"{where}: {field} is {value!r}; give a tuple, e.g. {field}=({value!r},)")
    if not isinstance(declaration.constants, dict):
        raise SubjectLoadError(f"{where}: constants is {declaration.constants!r}; give a dict {{name: value}}")
    if not isinstance(declaration.note, str):
        raise SubjectLoadError(f"{where}: note is {declaration.note!r}; give a str")
    for capability in declaration.lacks:
        if capability not in component.capabilities:
            raise unknown("capability", capability, component.capabilities, where)
    for constant, value in declaration.constants.items():
        if constant not in component.constants:
            raise unknown("constant", constant, component.constants, where)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SubjectLoadError(f"{where}: constant {constant!r} is {value!r}; give a number")
        within, domain = DOMAINS[constant]  # as the spec declares it (spec/constants.py)
        if not finite(value) or not within(value):
            raise SubjectLoadError(f"{where}: constant {constant!r} is {value!r}; give a finite number"
                                   + (f" {domain}" if domain else ""))
    check_runs(declaration, where)
    check_absent(subject, component, declaration, options, where)


def finite(value) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def check_runs(declaration: Declaration, where: str) -> None:
    """dtypes and devices, where given, name some run of the suite: an empty tuple leaves no check."""
    for dtype in declaration.dtypes or ():
        if not isinstance(dtype, torch.dtype):
            raise SubjectLoadError(f"{where}: dtypes lists {dtype!r}; give torch dtypes (torch.float32, …)")
        if dtype_name(dtype) not in DTYPES:
            raise SubjectLoadError(f"{where}: dtypes lists {dtype}, which the suite never runs in; it runs in "
                                   f"{', '.join(DTYPES)}")
    for device in declaration.devices or ():
        try:
            valid = isinstance(device, str) and torch.device(device).type == device
        except RuntimeError:
            valid = False
        if not valid:
            raise SubjectLoadError(f"{where}: devices lists {device!r}; give device types (\"cpu\", \"cuda\", …)")
    for field in ("dtypes", "devices"):
        if getattr(declaration, field) is not None and not getattr(declaration, field):
            raise SubjectLoadError(f"{where}: {field}=() leaves it no run, so nothing of it would be checked; "
                                   f"name the {field} it runs {'in' if field == 'dtypes' else 'on'}, or leave "
                                   f"{field} out (any)")
    if declaration.profiles == () and not declaration.note:
        raise SubjectLoadError(f"{where}: profiles=() runs it in no profile; say why in note")


def check_absent(subject: Subject, component, declaration: Declaration, options: dict, where: str) -> None:
    """Each absent parameter is one of the component's (under the declared variant) with an identity
    in the spec's equations (drawn as 0 where it is added, 1 where it multiplies)."""
    if not declaration.absent:
        return
    kind = kind_for(component, declared(subject.variants.get(component.name), options))
    names = parameter_names(component.name, kind) if component.has_parameters else ()
    for name in declaration.absent:
        if name not in names:
            raise unknown("absent parameter", name, names, where)
        if identity(name) is None:
            raise SubjectLoadError(f"{where}: absent parameter {name!r} is neither added nor an elementwise factor "
                                   f"in the spec (a weight matrix), so it has no identity to be drawn as; only a "
                                   f"bias or shift (drawn as 0) or a scale (drawn as 1) may be absent")


@cache
def parameter_names(component: str, kind) -> tuple[str, ...]:
    """The names of the parameters (at any depth) the component's builder is given under `kind`."""
    from .drawn_shapes import draw_at
    params = draw_at(COMPONENTS[component], kind, lambda label, high: 2)[0]
    return tuple(dict.fromkeys(path.rsplit(".", 1)[-1].split("[")[0] for path, _ in leaves(params)))


def _keywords(builder) -> list[str] | None:
    """The keyword parameters a builder takes after its params; None if it takes **kwargs."""
    try:
        parameters = list(inspect.signature(builder).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
