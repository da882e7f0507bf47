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
"""
from __future__ import annotations

import os
import random
import shlex
import signal
import sys
import threading
import warnings
from collections import Counter
from datetime import datetime, timezone
from functools import cached_property

import pytest

# importing the profiles registers dev, ci and thorough before Hypothesis's plugin loads one
from nlpspec.properties.profiles import DTYPES


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


class State:
    """The run's choices, resolved on first use, and its records (registered as a plugin of the
    run, so that two runs in one process, `pytest.main` called twice, keep theirs apart)."""

    def __init__(self, config):
        self.config = config
        self.records: list[dict] = []  # every case's record, gathered from the workers' reports
        option = config.getoption("subject")
        self.explicit = option is not None or "NLPSPEC_SUBJECT" in os.environ
        self.subject_name = option or os.environ.get("NLPSPEC_SUBJECT") or "reference"
        self.dtype_name = config.getoption("dtype")
        self.report = config.getoption("nlpspec_report")
        self.check, self.replay = config.getoption("nlpspec_check"), config.getoption("nlpspec_replay")
        given = config.getoption("hypothesis_seed", None)
        if given is None:  # a pytest-xdist worker searches with its controller's seed, the one the header prints
            given = getattr(config, "workerinput", {}).get("nlpspec_seed")
        try:
            self.seed = int(given) if given is not None else random.randrange(2**32)
        except ValueError:
            raise pytest.UsageError(f"--hypothesis-seed {given}: nlpspec needs a whole number") from None
        self.seed_given = config.getoption("hypothesis_seed", None) is not None
        from nlpspec.properties.profiles import chosen, unknown
        self.profile = config.getoption("hypothesis_profile", None) or chosen()
        wrong = unknown(self.profile)
        if wrong:
            raise pytest.UsageError(wrong)
        self.max_examples = config.getoption("nlpspec_max_examples")
        if self.max_examples is not None and self.max_examples < 1:
            raise pytest.UsageError(f"--nlpspec-max-examples {self.max_examples}: give 1 or more")
        self.first = config.getoption("nlpspec_first")
        self.threads_pinned = False
        self.causes: dict = {}  # a failure's cause -> the check that reported it first (in this process)
        self.announced = False  # the header line, for a run whose subject only its test files name
        self.session = None
        self.ran: set[str] = set()     # tests that reported (any outcome), and
        self.failed: set[str] = set()  # those that failed: did the run stop at its first failures?
        self.out = None              # the --nlpspec-report file (ReportFile), in the controller
        self.taken: dict = {}        # test -> how many of its records are in self.records
        self.running: list[str] = []  # tests started and not finished
        self.stop = ""               # what interrupted the run: SIGTERM, KeyboardInterrupt, …
        self.old_sigterm = None
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @cached_property
    def subject(self):
        from nlpspec.properties.declarations import validate
        from nlpspec.subjects.registry import SubjectLoadError, load_subject
        try:
            subject = load_subject(self.subject_name)
            validate(subject)
        except SubjectLoadError as exc:
            self.write_report(error=str(exc))
            raise pytest.UsageError(str(exc)) from None
        return subject

    @cached_property
    def device(self):
        import torch
        name = self.config.getoption("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        try:  # the canonical device ("cuda" -> "cuda:0"), as the subject's tensors will report it
            return torch.empty(0, device=torch.device(name)).device
        except (RuntimeError, AssertionError) as exc:
            self.write_report(error=f"--device {name}: {exc}")
            raise pytest.UsageError(f"--device {name}: {exc}") from None

    @property
    def dtype(self):
        import torch
        return getattr(torch, self.dtype_name)

    @cached_property
    def settings(self):
        from hypothesis import settings

        from nlpspec.properties.profiles import settings_for
        found = settings_for(self.profile)
        if self.max_examples is not None:
            found = settings(found, max_examples=min(self.max_examples, found.max_examples))
        if self.first:  # one failure a check: no search for further distinct ones
            found = settings(found, report_multiple_bugs=False)
        return found

    @property
    def timeout(self) -> float:
        from nlpspec.properties.engine.clock import DEFAULT_SECONDS
        given = self.config.getoption("nlpspec_timeout")
        return DEFAULT_SECONDS if given is None else given

    def pin_threads(self):
        """Two pytest-xdist workers on two cores: one BLAS and torch thread each."""
        if os.environ.get("PYTEST_XDIST_WORKER") and not self.threads_pinned:
            import torch
            from threadpoolctl import threadpool_limits
            torch.set_num_threads(1)
            self.config._nlpspec_threads = threadpool_limits(1)
            self.threads_pinned = True

    def reproduce(self, case, nodeid: str, builtin: bool):
        """blob -> the command line that reruns exactly this example of `case`."""
        def command(blob: str) -> str:
            where = f"--pyargs nlpspec --subject {shlex.quote(self.subject_name)}" if builtin else shlex.quote(nodeid)
            line = (f"pytest {where} --device {self.device} --dtype {self.dtype_name} "
                    f"--hypothesis-profile {self.profile} --nlpspec-check {shlex.quote(case.id)}"
                    + ("" if self.max_examples is None else f" --nlpspec-max-examples {self.max_examples}"))
            if blob:
                return line + f" --nlpspec-replay {blob}"
            return line + ("" if self.settings.derandomize else f" --hypothesis-seed {self.seed}")
        return command

    def header(self, subject=None) -> str:
        """The run's header line: subject and version, device, dtype, profile, seed."""
        from nlpspec.properties.profiles import SCALE_SCOPE, at_scale
        subject = subject or self.subject
        name, version = (subject.name, subject.version) if not isinstance(subject, dict) else \
            (subject["subject"], subject.get("version", ""))
        return (f"nlpspec: subject {name} {version}".rstrip() + f", device {self.device}, dtype {self.dtype_name}, "
                f"hypothesis profile {self.profile}"
                + ("" if self.settings.derandomize else f", seed {self.seed}")
                + ("" if self.max_examples is None else f", at most {self.settings.max_examples} examples a check")
                + (f"\nnlpspec: the scale profile runs only the {' and '.join(SCALE_SCOPE[1])} checks of "
                   f"{', '.join(SCALE_SCOPE[0])}" if at_scale(self.profile) else ""))

    def announce(self, terminal, subjects):
        """The header line of a run whose subject (or subjects) only its test files name
        (`parametrize_with_checks`), written once, before the first case's result."""
        if self.explicit or self.announced or terminal is None or not subjects:
            return
        self.announced = True
        terminal.ensure_newline()
        for subject in subjects:
            terminal.write_line(self.header(subject))

    def stopped_early(self) -> str:
        """Where the run stopped at its first failures (--nlpspec-first, -x, --maxfail) before every
        collected test ran: a line saying so and how many did not run; else ""."""
        maxfail, collected = self.config.option.maxfail, getattr(self.session, "testscollected", 0)
        if not maxfail or len(self.failed) < maxfail or len(self.ran) >= collected:
            return ""
        why = "--nlpspec-first" if self.first else "-x" if maxfail == 1 else f"--maxfail {maxfail}"
        return (f"nlpspec: stopped after the first failing check{'s' if maxfail > 1 else ''} ({why}): "
                f"{collected - len(self.ran)} of {collected} tests not run")

    def pytest_sessionstart(self, session):
        self.session = session

    def terminated(self, signum, frame):
        """SIGTERM (`timeout`, a CI's cancel) stops the run as Ctrl-C does: the report keeps what finished."""
        self.stop = "SIGTERM"
        raise KeyboardInterrupt("SIGTERM")

    def pytest_keyboard_interrupt(self, excinfo):
        from nlpspec.report_file import described
        self.stop = self.stop or described(excinfo.value)

    def pytest_runtest_logstart(self, nodeid):
        if self.out is not None:
            self.running.append(nodeid)
            self.save()  # a process that dies in this test leaves a report naming it

    def pytest_runtest_logfinish(self, nodeid):
        if self.out is not None and nodeid in self.running:
            self.running.remove(nodeid)
            self.save()

    @pytest.hookimpl(tryfirst=True)  # the header before the terminal writes the first result
    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            self.ran.add(report.nodeid)
        if report.failed:
            self.failed.add(report.nodeid)
        if report.when == "???" and report.nodeid in self.running:  # pytest-xdist: the worker running it died
            self.running.remove(report.nodeid)
        found = [value for name, value in report.user_properties if name == "nlpspec"]
        known = self.taken.get(report.nodeid, 0)  # each report carries its test's records so far: take the new
        if report.failed and not found and not known and self.report:  # made outside the test's process: a crash
            from nlpspec.report_file import error_record
            crash = getattr(report.longrepr, "reprcrash", None)
            found = [error_record(report.nodeid, getattr(crash, "message", None) or report.longreprtext.strip())]
        self.taken[report.nodeid] = max(known, len(found))
        for value in found[known:]:
            self.records.append(value)
            if hasattr(self.config, "workerinput") or self.announced or not value["subject"]:
                continue
            # under pytest-xdist the controller collects nothing: the first record names the subject
            self.announce(self.config.pluginmanager.get_plugin("terminalreporter"), [value])

    @cached_property
    def versions(self) -> dict:
        from nlpspec.report_file import versions
        return versions()

    def head(self, error: str | None, stopped: str) -> dict:
        """The report's fields before its records: the run, its totals, and why it is unfinished."""
        found = {"subject": self.subject_name, "device": self.config.getoption("device") or "",
                 "dtype": self.dtype_name, "profile": self.profile}
        if "subject" in self.__dict__:
            found |= {"subject": self.subject.name, "version": str(self.subject.version)}
        if "device" in self.__dict__:
            found["device"] = str(self.device)
        subject_version = found.get("version") or next((r["version"] for r in self.records if r.get("version")), "")
        found |= {"seed": None if self.settings.derandomize else self.seed,
                  "command": shlex.join(["pytest", *self.config.invocation_params.args]),
                  "started": self.started, "versions": self.versions | {"subject": subject_version},
                  "collected": getattr(self.session, "testscollected", 0),
                  "totals": dict(Counter(r["status"] for r in self.records)), "running": self.running}
        if error:
            found["error"] = error
        if stopped:  # not every collected case ran
            found["stopped"] = stopped.removeprefix("nlpspec: ")
        return found

    def write_report(self, error: str | None = None, stopped: str = ""):
        """The report: every record so far, and `error` where the run did not finish."""
        if self.out is not None:
            self.out.write(self.head(error, stopped), self.records)

    def save(self):
        """The report as the run goes: what finished, what is running (and is where it died, if it did)."""
        doing = f"it was running {', '.join(self.running)}" if self.running else "it was between two tests"
        self.write_report(error=f"the run has not finished: {doing} when this report was written")


def state(config) -> State:
    return config._nlpspec


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
    if _case(item) is not None or state(item.config).report:  # not in runs that are none of nlpspec's business
        from nlpspec.report_file import described, error_record
        exc = call.excinfo.value if call.excinfo else None
        message = described(exc) if exc is not None else report.longreprtext.strip()
        message += "" if call.when == "call" else f" (in the test's {call.when})"
        record = error_record(item.nodeid, message, type(exc).__name__ if exc else "", _case(item))
        item.user_properties.append(("nlpspec", record))
        report.user_properties.append(("nlpspec", record))
    return report


def pytest_report_header(config):
    run = state(config)
    if not run.explicit:
        return None  # the subject is named by the test files: the header comes once they are collected
    return run.header()


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
    subjects = {id(case.subject): case.subject for case in map(_case, session.items) if case is not None}
    run.announce(session.config.pluginmanager.get_plugin("terminalreporter"), list(subjects.values()))


def pytest_collection_modifyitems(config, items):
    from nlpspec.properties.profiles import in_scope
    run = state(config)
    outside = [item for item in items if _case(item) is not None and
               not in_scope(run.profile, _case(item).component.name, _case(item).check.name)]
    if outside:  # the scale profile's few components and checks
        config.hook.pytest_deselected(items=outside)
        items[:] = [item for item in items if item not in outside]
    wanted = run.check
    if wanted is None:
        return
    keep = [item for item in items if _case(item) is not None and _case(item).id == wanted]
    if not keep and any(_case(item) is not None for item in items):
        known = sorted({_case(item).id for item in items if _case(item) is not None})
        raise pytest.UsageError(f"--nlpspec-check {wanted}: no such case; known: {', '.join(known[:8])}, …")
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def _case(item):
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("nlpspec_case") if callspec else None


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


def pytest_terminal_summary(terminalreporter, config):
    run = state(config)
    records = [r for r in run.records if r["component"]]  # not an error outside any case: that has its line
    errors = [r for r in run.records if r["status"] == "error"]
    if errors:
        terminalreporter.ensure_newline()
        terminalreporter.write_line(f"nlpspec: {len(errors)} test(s) raised outside the checks (status error in "
                                    f"--nlpspec-report):")
        for r in errors:
            terminalreporter.write_line(f"  {r['nodeid']}: {r['message'].splitlines()[0][:200]}")
    if not records:
        return
    stopped = run.stopped_early()
    from nlpspec.properties.summary import declarations, observations, summary
    subjects = ", ".join(sorted({r["subject"] for r in records}))
    terminalreporter.section(f"nlpspec conformance: {subjects} ({run.device}, {run.dtype_name})")
    for line in summary(records):
        terminalreporter.write_line(line)
    declared = declarations(records)
    if declared:
        terminalreporter.write_line("declared by the subject (not drawn, not run, or set as it says):")
        for line in declared:
            terminalreporter.write_line(f"  {line}")
    notes = observations(records)
    if notes:
        terminalreporter.write_line("observed, not judged (where the spec leaves a value undefined, or a check "
                                    "cannot look), the subject:")
        for line in notes:
            terminalreporter.write_line(f"  {line}")
    if stopped:
        terminalreporter.write_line(stopped)


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
