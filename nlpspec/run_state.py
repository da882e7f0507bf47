"""The run's state (`State`): its choices (subject, device, dtype, profile, seed, limits), resolved on
first use, the header line and a failure's reproduce line made from them, and the records the run
gathers, written to the --nlpspec-report file as it goes (report_file.py). plugin.py makes one per
run and registers it as a plugin of the run; `state(config)` is that one."""
from __future__ import annotations

import os
import random
import shlex
from collections import Counter
from datetime import datetime, timezone
from functools import cached_property

import pytest


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
