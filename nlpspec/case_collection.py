"""The cases a run collects: one test per case of the subject (component, check, option set), by
nlpspec's own `test_conformance` or a test of one's own decorated with `parametrize_with_checks`; the
scale profile's few components and checks, and --nlpspec-check's one case, selected; the header line
of a run whose subject only its test files name. Its hooks are the plugin's: plugin.py imports them."""
from __future__ import annotations

import sys

import pytest

from nlpspec.run_state import state


def parametrize_with_checks(subject):
    """Decorate a test of one's own with every case of `subject` (a Subject, or a name as
    --subject takes it), scikit-learn style:

        @parametrize_with_checks(SUBJECT)
        def test_my_lstm(nlpspec_case, nlpspec_verdict):
            nlpspec_verdict(nlpspec_case)
    """
    from nlpspec.properties.declarations import validate
    from nlpspec.properties.case import cases
    from nlpspec.subjects.registry import load_subject
    if isinstance(subject, str):
        subject = load_subject(subject)
    validate(subject)
    found = cases(subject)
    return pytest.mark.parametrize("nlpspec_case", found, ids=[case.id for case in found])


def pytest_generate_tests(metafunc):
    if "nlpspec_case" not in metafunc.fixturenames:
        return
    if any("nlpspec_case" in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize")):
        return  # parametrize_with_checks
    from nlpspec.properties.case import cases
    found = cases(state(metafunc.config).subject)
    metafunc.parametrize("nlpspec_case", found, ids=[case.id for case in found])


def pytest_collection_finish(session):
    """Pin a worker's threads once its tests are imported (torch among them), before any test runs:
    the suite's own tests as much as the cases; and write the header line of a run whose cases
    come from its own test files (`parametrize_with_checks`)."""
    run = state(session.config)
    if "torch" in sys.modules:
        run.pin_threads()
    if hasattr(session.config, "workerinput"):
        return
    subjects = {id(case.subject): case.subject for case in map(case_of, session.items) if case is not None}
    run.announce(session.config.pluginmanager.get_plugin("terminalreporter"), list(subjects.values()))


def pytest_collection_modifyitems(config, items):
    from nlpspec.properties.profiles import in_scope
    run = state(config)
    outside = [item for item in items if case_of(item) is not None and
               not in_scope(run.profile, case_of(item).component.name, case_of(item).check.name)]
    if outside:  # the scale profile's few components and checks
        config.hook.pytest_deselected(items=outside)
        items[:] = [item for item in items if item not in outside]
    wanted = run.check
    if wanted is None:
        return
    keep = [item for item in items if case_of(item) is not None and case_of(item).id == wanted]
    if not keep and any(case_of(item) is not None for item in items):
        known = sorted({case_of(item).id for item in items if case_of(item) is not None})
        raise pytest.UsageError(f"--nlpspec-check {wanted}: no such case; known: {', '.join(known[:8])}, …")
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def case_of(item):
    """The case a collected test runs (its `nlpspec_case` parameter), or None."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("nlpspec_case") if callspec else None
