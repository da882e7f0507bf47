"""Running checks: one function runs a case (component, check, option set) with Hypothesis and
returns its record; pytest (nlpspec/test_conformance.py, `parametrize_with_checks`) and the plain
`check_subject` both call it.

    >>> from nlpspec import load_subject, check_subject
    >>> records = check_subject(load_subject("torch"))     # no pytest needed
    >>> [r for r in records if r.status == "fail"]

Every failure of a case is kept (Hypothesis may find several distinct ones): record.py.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict

import hypothesis
import torch
from hypothesis import Phase, given, reproduce_failure
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.core import encode_failure
from hypothesis.errors import DidNotReproduce, FlakyFailure
from hypothesis.reporting import with_reporter

from nlpspec.spec.constants import in_force
from nlpspec.subjects.protocol import Subject

from .case import Case, cases, declared_reason, described, skip_reason
from .declarations import validate
from .engine import failures as fail
from .engine.check import Check
from .engine.clock import SubjectHang
from .engine.component import Component, declared
from .engine.containment import suite_state
from .engine.failures import SubjectFailure
from .engine.harness import Harness, Run
from .profiles import SHRINK_SECONDS, at_scale, chosen, in_scope, settings_for
from .record import Record, by_cause


def execute(run: Run, component: Component, check: Check, settings=None, seed: int | None = None,
            replay: str | None = None) -> Record:
    """Run one check; return its record. `replay` (a blob from a failure) runs that example alone."""
    subject = run.subject
    record = Record(subject.name, component.name, check.name, [], "pass", options=dict(run.options),
                    option_set=getattr(run.options, "name", ""), version=subject.version)
    variant = declared(subject.variants.get(component.name), run.options)
    record.variant = ", ".join(variant)
    record.eids = list(Case(subject, component, check, run.options).eids)
    record.declared = described(subject.declaration(component.name, run.options), component)
    reason = skip_reason(subject, component, check)
    if reason:
        record.status, record.message = "skip", reason
        return record
    record.declined, reason = declared_reason(run, component, check)
    if reason:
        record.status, record.message = "skip", reason
        return record
    harness = Harness(run, component)
    # examples drawn when each failure appeared, and when (the shrinking's time). The inner test's
    # source is Hypothesis's seed under derandomize (function_digest): the ci profile's examples, and
    # the zoo's catches, change with every edit of it
    found_at = _Timed()

    @given(data=st.data())
    def test(data):
        harness.begin_example()
        try:
            with in_force(harness.declaration.constants):  # the oracle with the subject's constants
                check.body(harness, data)
        except BaseException as exc:
            found_at.append(harness.examples)
            exc._nlpspec_replay = encode_failure(current_build_context().data.choices).decode()
            raise

    test._hypothesis_internal_add_digest = repr(  # one example database entry per check and run
        (subject.name, component.name, check.name, sorted(run.options.items()), str(run.dtype))).encode()
    if settings is not None:
        if check.share < 1 and not run.scale:  # the scale profile's few examples are every check's
            settings = hypothesis_settings(settings, max_examples=max(1, round(settings.max_examples * check.share)))
        test = settings(test)
    if seed is not None:
        test = hypothesis_seed(int(seed))(test)
    if replay:
        test = reproduce_failure(hypothesis.__version__, replay.encode())(test)
    failures, reported = [], []  # a replay reports its example through Hypothesis's reporter, not as notes
    try:
        with with_reporter(reported.append), shrinking_for(SHRINK_SECONDS), suite_state():
            test()
    except SubjectHang as exc:  # a BaseException: Hypothesis stops at once, nothing to shrink
        failures = [exc]
    except FlakyFailure as group:
        first = group.exceptions[0]
        failures = [fail.unstable_verdict(harness.where(), first)]
        failures[0]._nlpspec_replay = getattr(first, "_nlpspec_replay", "")
    except DidNotReproduce as exc:
        failures = [fail.did_not_reproduce(harness.where(), exc)]
    except SubjectFailure as exc:
        failures = [exc]
    except BaseExceptionGroup as group:  # several distinct failures
        flat = list(_leaves(group))
        internal = [e for e in flat if not isinstance(e, SubjectFailure)]
        if internal:
            raise internal[0]
        failures = flat
    record.examples = found_at[0] if found_at else harness.examples
    cut_short = len(found_at.when) > 1 and found_at.when[-1] - found_at.when[0] >= SHRINK_SECONDS
    record.failures = [asdict(failure) for failure in by_cause(failures, run.reproduce, reported, cut_short)]
    expected = subject.expected_failures.get(record.id)
    if failures:
        record.status = "xfail" if expected else "fail"
        record.message = expected or "\n\n".join(f["message"] for f in record.failures)
    elif harness.judged_nothing():  # credits only what ran: every example was an observation at most
        record.status = "skip"
        record.message = "no example was judged" + "".join(f"; {note}" for note in sorted(harness.observations))
    elif expected:
        record.status = "stale"
        record.message = f"expected to fail ({expected}), but passed: remove it from expected_failures"
    record.observations = sorted(harness.observations)
    record.returned, record.unreturned = sorted(harness.returned), harness.unreturned()
    return record


class _Timed(list):
    """A list that notes when each item was appended."""

    def __init__(self):
        super().__init__()
        self.when: list[float] = []

    def append(self, item):
        self.when.append(time.perf_counter())
        super().append(item)


@contextmanager
def shrinking_for(seconds: float):
    """Hypothesis shrinks a failing example for at most `seconds` within (its own limit, five minutes,
    is a module constant it documents as one to patch; set back on the way out). An example of the
    suite is a whole model drawn, and a check whose examples are costly (a gradient of multi-head
    attention) spent most of its five minutes making an example a little smaller."""
    from hypothesis.internal.conjecture import engine
    before = engine.MAX_SHRINKING_SECONDS
    engine.MAX_SHRINKING_SECONDS = min(before, seconds)
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = before


def _leaves(group: BaseExceptionGroup):
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup) and not isinstance(exc, FlakyFailure):
            yield from _leaves(exc)
        else:
            yield exc


def check_subject(subject: Subject, device: str | torch.device | None = None, dtype: torch.dtype = torch.float64,
                  settings: hypothesis_settings | None = None, components: list[str] | None = None,
                  checks: list[str] | None = None, profile: str | None = None) -> list[Record]:
    """Run every check (or those named in `checks`) of every component (or those in `components`)
    on `subject` outside pytest and return the records (scikit-learn style). `profile` as pytest
    takes it (default: dev, or ci where CI is set; scale also sets the sizes and the scope);
    `settings`, if given, replace its settings."""
    validate(subject)
    profile = profile or chosen()
    settings = settings or settings_for(profile)
    device = torch.empty(0, device=device or ("cuda" if torch.cuda.is_available() else "cpu")).device
    return [execute(Run(subject, device, dtype, case.options, scale=at_scale(profile), profile=profile), case.component,
                    case.check, settings)
            for case in cases(subject) if in_scope(profile, case.component.name, case.check.name)
            and (components is None or case.component.name in components) and (checks is None or case.check.name in checks)]


def first_failure(subject: Subject, components, settings, device="cpu", dtype=torch.float64,
                  checks=None, scale: bool = False) -> Record | None:
    """Run the checks (all, or those named in `checks`) of `components` until one fails, with
    shrinking off; return that record, or None. With scale, at the scale profile's sizes.

    This is how the mutant zoo is hunted: shrinking makes a failure smaller, not likelier."""
    hunting = hypothesis_settings(settings, phases=(Phase.explicit, Phase.generate))
    for case in cases(subject):
        if case.component.name in components and (checks is None or case.check.name in checks):
            record = execute(Run(subject, torch.empty(0, device=device).device, dtype, case.options, scale=scale),
                             case.component, case.check, hunting)
            if record.status == "fail":
                return record
    return None
