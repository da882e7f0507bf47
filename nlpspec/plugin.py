"""nlpspec's pytest plugin, registered for every pytest run by the `pytest11` entry point.

Options (group "nlpspec"): --subject NAME (or NLPSPEC_SUBJECT), --device, --dtype,
--nlpspec-report PATH, --nlpspec-check ID, --nlpspec-replay BLOB, --nlpspec-timeout SECONDS,
--nlpspec-first, --nlpspec-max-examples N; the Hypothesis profile with Hypothesis's own
--hypothesis-profile (dev by default, ci when CI is set; an unknown one is a usage error, exit 4).

A run that runs nlpspec's cases starts with a header line (subject, version, device, dtype,
profile, seed); a failure is reported once per cause (failures.py), with a compact example. The
JSON report is written as the run goes (report_file.py); SIGTERM stops a run as Ctrl-C does.

Tests that take the `nlpspec_case` fixture (nlpspec's own `test_conformance`, or a test of one's
own decorated with `parametrize_with_checks(SUBJECT)`) get one case per component, check and
option set; the `nlpspec_verdict` fixture runs a case and reports it. Nothing heavy (torch, the
subject) is loaded until such a test is collected, so the plugin costs nothing elsewhere, unless
--subject is named, which is loaded and checked at once (exit code 4 on a bad name).

Here: the options and the run's course (configure, a failing test's record, the header, the report's
last word). The rest has a module each, whose hooks and fixture this one imports for pytest to find:
run_state.py (the run's choices and records), case_collection.py (the cases collected and selected),
verdict_fixture.py (a case run and reported), terminal_summary.py (the summary).
"""
from __future__ import annotations

import signal
import threading

import pytest

# pytest finds a plugin's hooks and fixtures by name in the module its entry point names: this one
from nlpspec.case_collection import (case_of, parametrize_with_checks, pytest_collection_finish,  # noqa: F401
                                     pytest_collection_modifyitems, pytest_generate_tests)
# importing the profiles registers dev, ci and thorough before Hypothesis's plugin loads one
from nlpspec.properties.profiles import DTYPES
from nlpspec.run_state import State, state
from nlpspec.terminal_summary import pytest_terminal_summary  # noqa: F401
from nlpspec.verdict_fixture import nlpspec_verdict  # noqa: F401


def pytest_addoption(parser):
    from nlpspec.properties.profiles import described
    group = parser.getgroup("nlpspec", "nlpspec: the implementation to verify and how. Its Hypothesis profiles "
                                       f"(--hypothesis-profile NAME) are {described()}")
    group.addoption("--subject", default=None,
                    help="implementation to verify: reference (default), torch, zoo.NAME, or package.module:object "
                         "(default from NLPSPEC_SUBJECT)")
    group.addoption("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    group.addoption("--dtype", default="float64", choices=DTYPES, help="dtype the subject runs in")
    group.addoption("--nlpspec-report", default=None, metavar="PATH",
                    help="write every case's record as JSON, as the run goes (docs/guide/reports.md)")
    group.addoption("--nlpspec-check", default=None, metavar="ID",
                    help="run only the case with this id (component-check[-options]-E-ids, as the failure prints it)")
    group.addoption("--nlpspec-replay", default=None, metavar="BLOB",
                    help="with --nlpspec-check: replay exactly the example of a failure (its reproduce line)")
    group.addoption("--nlpspec-timeout", default=None, type=float, metavar="SECONDS",
                    help="time limit on each build and call of the subject (default 60; 0: none)")
    group.addoption("--nlpspec-first", action="store_true", default=False,
                    help="stop the run at the first failing check, and each check at its first failure "
                         "(as -x; the summary and the report say how many checks did not run)")
    group.addoption("--nlpspec-max-examples", default=None, type=int, metavar="N",
                    help="at most N examples a check (a quick look; the profile's number otherwise: "
                         "dev 25, ci 50, thorough 500, scale 5)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Before Hypothesis's plugin loads the profile (an unknown one is a usage error here, not its
    internal error) and before pytest-xdist reads -x (--nlpspec-first is -x)."""
    config.addinivalue_line("markers", "selftest: tests of nlpspec itself, independent of --subject")
    config._nlpspec = State(config)
    run = config._nlpspec
    if run.first and not config.option.maxfail:
        config.option.maxfail = 1
    config.pluginmanager.register(run, "nlpspec-run")
    if run.report and not hasattr(config, "workerinput"):
        from nlpspec.report_file import ReportFile, unwritable
        why = unwritable(run.report)
        if why:
            raise pytest.UsageError(why)
        run.out = ReportFile(run.report)
    if run.out is not None and threading.current_thread() is threading.main_thread():
        run.old_sigterm = signal.signal(signal.SIGTERM, run.terminated)
    if run.check is None and run.replay:
        raise pytest.UsageError("--nlpspec-replay replays one case: give its id with --nlpspec-check as well")
    if run.explicit:
        run.subject  # a bad name stops the run here, in one line
        run.device  # and so does a bad device (without -q, the header would name it; with -q, each case)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist, for each worker it starts: the run's seed (each process would draw its own)."""
    node.workerinput["nlpspec_seed"] = state(node.config).seed


def pytest_unconfigure(config):
    run = getattr(config, "_nlpspec", None)
    if run is not None and run.old_sigterm is not None:
        signal.signal(signal.SIGTERM, run.old_sigterm)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed with no record (the suite raised, not the subject; or a test of one's own)
    gets an `error` record, so that the report never passes where pytest failed."""
    report = yield
    if not report.failed or any(name == "nlpspec" for name, _ in item.user_properties):
        return report
    if case_of(item) is not None or state(item.config).report:  # not in runs that are none of nlpspec's business
        from nlpspec.report_file import described, error_record
        exc = call.excinfo.value if call.excinfo else None
        message = described(exc) if exc is not None else report.longreprtext.strip()
        message += "" if call.when == "call" else f" (in the test's {call.when})"
        record = error_record(item.nodeid, message, type(exc).__name__ if exc else "", case_of(item))
        item.user_properties.append(("nlpspec", record))
        report.user_properties.append(("nlpspec", record))
    return report


def pytest_report_header(config):
    run = state(config)
    if not run.explicit:
        return None  # the subject is named by the test files: the header comes once they are collected
    return run.header()


@pytest.hookimpl(tryfirst=True)  # the report's last word before pytest-xdist waits for its workers to stop
def pytest_sessionfinish(session, exitstatus):
    run = state(session.config)
    if hasattr(session.config, "workerinput"):
        return
    stopped = run.stopped_early()
    if stopped and int(exitstatus) == pytest.ExitCode.INTERRUPTED:
        # pytest-xdist ends a run stopped by -x as interrupted; without it, such a run has failed
        session.exitstatus = exitstatus = pytest.ExitCode.TESTS_FAILED
    if run.out is None or (not run.ran and not run.running and int(exitstatus) in (0, 5)):
        return  # a run that ran no test and met no error (--collect-only, nothing selected) leaves an earlier report
    collected = getattr(session, "testscollected", 0)
    error = None
    if run.stop and not stopped:  # (pytest-xdist stops -x with a KeyboardInterrupt of its own)
        error = f"the run was stopped by {run.stop}: {len(run.ran)} of {collected} tests finished, their records kept"
        stopped = f"stopped by {run.stop}: {collected - len(run.ran)} of {collected} tests not run"
    elif int(exitstatus) not in (0, 1, 5):  # else every collected case reported
        error = f"pytest stopped with exit status {int(exitstatus)}"
    run.write_report(error=error, stopped=stopped)
