"""Running checks: one function runs a (component, check) pair with Hypothesis and returns a
record; pytest (tests/test_conformance.py) and the plain `check_subject` both call it.

    >>> from subjects import load_subject
    >>> records = check_subject(load_subject("torch"))     # no pytest needed
    >>> [r for r in records if r.status == "fail"]
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from hypothesis import Phase, given
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from subjects import Subject

from .checks import Check, generate
from .components import COMPONENTS, Component, declared, eids_for, kind_for
from .harness import Harness, Run, SubjectFailure, option_sets


@dataclass
class Record:
    """What one check found, in a form for tables and JSON."""

    subject: str
    component: str
    check: str
    eids: list
    status: str          # pass, fail, skip, xfail (expected failure that failed), stale (one that passed)
    message: str = ""
    variant: str = ""
    options: dict = field(default_factory=dict)
    examples: int = 0    # cases drawn: all of them if it passed, up to the first failure if not

    @property
    def id(self) -> str:
        return check_id(self.component, self.check)

    def as_dict(self) -> dict:
        return asdict(self) | {"id": self.id}


def check_id(component: str, check: str) -> str:
    return f"{component}-{check}"


def cases(subject: Subject):
    """(component, check, options) for every check the suite has, for this subject."""
    for component, check in generate():
        for options in option_sets(subject, component):
            yield component, check, options


def skip_reason(subject: Subject, component: Component, check: Check) -> str:
    for name in (component.name, *check.needs(component)):
        if not subject.offers(name):
            return f"subject {subject.name!r} does not offer component {name}"
    return ""


def execute(run: Run, component: Component, check: Check, settings=None, seed=None) -> tuple[Record, BaseException | None]:
    """Run one check; return its record and, if it failed, the exception (with Hypothesis' notes)."""
    subject = run.subject
    record = Record(subject.name, component.name, check.name, [], "pass", options=dict(run.options))
    try:
        variant = declared(subject.variants.get(component.name), run.options)
        kind = kind_for(component, variant)
        record.variant = ", ".join(variant)
    except ValueError as exc:
        record.status, record.message = "fail", f"subject {subject.name!r}: {exc}"
        return record, exc
    record.eids = list(eids_for(component, kind) if check.name == "oracle" else ())
    reason = skip_reason(subject, component, check)
    if reason:
        record.status, record.message = "skip", reason
        return record, None
    harness = Harness(run, component)
    record.eids = list(check.eids(harness))

    found_at = []  # examples drawn when the first failure appeared

    @given(data=st.data())
    def test(data):
        try:
            check.body(harness, data)
        except Exception:
            found_at.append(harness.examples)
            raise

    test._hypothesis_internal_add_digest = repr(  # one example database entry per check and run
        (subject.name, component.name, check.name, sorted(run.options.items()), str(run.dtype))).encode()
    if settings is not None:
        test = settings(test)
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    error = None
    try:
        test()
    except Exception as exc:
        error = exc
        if isinstance(exc, SubjectFailure) and run.reproduce and "reproduce:" not in str(exc):
            exc.args = (f"{exc}\n  reproduce: {run.reproduce}",)  # every failure says how to rerun it
    record.examples = found_at[0] if found_at else harness.examples
    expected = subject.expected_failures.get(record.id)
    if error is not None:
        record.status = "xfail" if expected else "fail"
        record.message = expected or str(error)
    elif expected:
        record.status = "stale"
        record.message = f"expected to fail ({expected}), but passed: remove it from expected_failures"
    elif harness.observations:
        record.message = "observed: " + "; ".join(sorted(harness.observations))
    return record, error


def check_subject(subject: Subject, device: str | torch.device | None = None, dtype: torch.dtype = torch.float64,
                  settings: hypothesis_settings | None = None, components: list[str] | None = None,
                  checks: list[str] | None = None) -> list[Record]:
    """Run every check (or those named in `checks`) of every component (or those in `components`)
    on `subject` outside pytest and return the records (scikit-learn style)."""
    device = torch.empty(0, device=device or ("cuda" if torch.cuda.is_available() else "cpu")).device
    records = []
    for component, check, options in cases(subject):
        if (components is None or component.name in components) and (checks is None or check.name in checks):
            record, _ = execute(Run(subject, device, dtype, options), component, check, settings)
            records.append(record)
    return records


def first_failure(subject: Subject, components, settings, device="cpu", dtype=torch.float64,
                  checks=None) -> Record | None:
    """Run the checks (all, or those named in `checks`) of `components` until one fails, with
    shrinking off; return that record, or None.

    This is how the mutant zoo is hunted: shrinking makes a failure smaller, not likelier."""
    hunting = hypothesis_settings(settings, phases=(Phase.explicit, Phase.generate))
    for component, check, options in cases(subject):
        if component.name in components and (checks is None or check.name in checks):
            record, _ = execute(Run(subject, torch.empty(0, device=device).device, dtype, options), component, check,
                                hunting)
            if record.status == "fail":
                return record
    return None


__all__ = ["COMPONENTS", "Record", "cases", "check_subject", "execute", "first_failure"]
