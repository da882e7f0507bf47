"""The `nlpspec_verdict` fixture: a case run on its subject and reported to pytest (pass, fail, skip,
xfail, or a warning for a stale expected failure), each cause of failure written out once in the run.
Its fixture is the plugin's: plugin.py imports it."""
from __future__ import annotations

import warnings

import pytest

from nlpspec.run_state import State, state


@pytest.fixture
def nlpspec_verdict(request, record_property):
    """Run one case on its subject and report it to pytest: pass, fail (every distinct failure, each
    with its reproduce line), skip, xfail, or a warning for a stale expected failure."""
    from hypothesis.statistics import collector, describe_statistics

    from nlpspec.properties.engine.harness import Run
    from nlpspec.properties.profiles import at_scale
    from nlpspec.properties.runner import execute
    from nlpspec.report_file import plain

    def verdict(case):
        config = request.config
        run = state(config)
        run.pin_threads()
        builtin = request.node.module.__name__ == "nlpspec.test_conformance"
        replay = run.replay if run.check == case.id else None

        def note_statistics(stats):
            stats["nodeid"] = request.node.nodeid
            request.node.hypothesis_statistics = describe_statistics(stats)
        with collector.with_value(note_statistics):
            record = execute(Run(case.subject, run.device, run.dtype, case.options,
                                 reproduce=run.reproduce(case, request.node.nodeid, builtin), time_limit=run.timeout,
                                 scale=at_scale(run.profile), profile=run.profile),
                             case.component, case.check, run.settings, None if run.settings.derandomize else run.seed,
                             replay)
        record_property("nlpspec", plain(record.as_dict()))
        if record.status == "skip":
            pytest.skip(record.message)
        if record.status == "xfail":
            pytest.xfail(f"expected failure: {record.message}")
        if record.status == "stale":
            warnings.warn(f"{record.id}: {record.message}", UserWarning, stacklevel=1)
        if record.status == "fail":
            pytest.fail(reported(run, record.id, record), pytrace=False)
    return verdict


def reported(run: State, check: str, record) -> str:
    """A failing case's text for the terminal: each cause once in the run. A failure whose cause an
    earlier check of this process has reported (the same kind, output, E-id and message: a NaN, or
    a builder that raises, fails every check alike) is one line pointing there; the JSON report keeps
    every record whole."""
    texts = []
    for failure in record.failures:
        first = failure["message"].split("\n", 1)[0]
        cause = (failure["kind"], first)
        if cause in run.causes and run.causes[cause] != check:
            texts.append(f"the same failure as {run.causes[cause]} above (same kind, output and equation): {first}")
        else:
            run.causes.setdefault(cause, check)
            texts.append(failure["message"])
    head = f"{len(texts)} distinct failures of this check:\n" if len(texts) > 1 else ""
    return head + "\n\n".join(texts)
