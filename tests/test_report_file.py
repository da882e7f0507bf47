"""The --nlpspec-report file (issue 24): written as the run goes and replaced atomically, a record
for every test that failed outside the checks, SIGTERM's stop stated with every finished record
kept, the case a dead process was running, an unwritable path refused before anything runs, and
the run's totals, versions, seed and command line."""
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from nlpspec.report_file import ReportFile, described

pytestmark = pytest.mark.selftest
HERE = pathlib.Path(__file__).parent


def pytest_command(*args):
    return [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args]


def read(path: pathlib.Path) -> dict | None:
    """The report as a reader sees it now (None before it exists): always whole JSON."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


MINE = '''
import pytest
from nlpspec import parametrize_with_checks


class Hostile(Exception):
    def __str__(self):
        raise RuntimeError("no text")


@pytest.fixture(autouse=True)
def suite_raises(request, monkeypatch):
    """The determinism check's case: the suite itself raises, not the subject."""
    case = getattr(request.node, "callspec", None) and request.node.callspec.params.get("nlpspec_case")
    if case and case.check.name == "determinism":
        def execute(*args, **kwargs):
            raise {raised}
        monkeypatch.setattr("nlpspec.properties.runner.execute", execute)


@parametrize_with_checks("reference")
def test_mine(nlpspec_case, nlpspec_verdict):
    nlpspec_verdict(nlpspec_case)


def test_plain():
    raise SystemExit(3)
'''


@pytest.mark.parametrize("raised, message", [
    ("SystemExit(3)", "SystemExit: 3"),
    ("Hostile()", "Hostile: <its message could not be read: RuntimeError in __str__>"),
])
def test_a_test_that_raises_outside_the_checks_is_an_error_record(run_pytest, pytester, raised, message):
    """pytest says failed: so does the report, with the exception and the test's node id."""
    (pytester.path / "test_mine.py").write_text(MINE.format(raised=raised))
    done, report = run_pytest("test_mine.py", "-k", "rnn.cell-oracle or rnn.cell-determinism or plain",
                              pyargs=False)
    done.assert_outcomes(passed=1, failed=2)
    assert report["totals"] == {"pass": 1, "error": 2} and "error" not in report
    errors = {r["nodeid"]: r for r in report["records"] if r["status"] == "error"}
    case = errors["test_mine.py::test_mine[rnn.cell-determinism-rnn.cell]"]
    assert case["message"] == message and case["exception"] == message.split(":")[0]
    assert (case["subject"], case["component"], case["check"], case["id"]) == (
        "reference", "rnn.cell", "determinism", "rnn.cell-determinism")
    assert errors["test_mine.py::test_plain"]["message"] == "SystemExit: 3"
    assert "nlpspec: 2 test(s) raised outside the checks" in done.stdout.str()
    assert any(line.split()[-2:] == ["error", "(determinism)"] for line in done.outlines), done.stdout.str()


def test_the_file_is_replaced_whole_never_torn(tmp_path):
    """A reader that reads while the file is rewritten always finds a whole JSON, and no temp file stays."""
    path = tmp_path / "report.json"
    out = ReportFile(str(path))
    records = [{"message": "x" * 2000, "n": n} for n in range(300)]
    reads, done = [], threading.Event()

    def reader():
        while not done.is_set():
            if path.exists():
                reads.append(len(json.loads(path.read_text())["records"]))
    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, len(records) + 1):
            out.write({"subject": "s"}, records[:n])
    finally:
        done.set()
        thread.join()
    assert len(reads) > 20 and reads == sorted(reads), reads[:50]
    assert read(path)["records"] == records and os.listdir(tmp_path) == ["report.json"]


def test_the_run_replaces_the_file_not_rewrites_it(run_pytest, pytester):
    """A reader holding the earlier report (a hard link here) keeps it whole: the run writes a new file."""
    path, kept = pytester.path / "report.json", pytester.path / "kept.json"
    path.write_text('{"records": ["an earlier run"]}')
    os.link(path, kept)
    done, report = run_pytest("--subject", "reference", "-k", "rnn.cell-oracle")
    assert done.ret == 0 and report["totals"] == {"pass": 1}
    assert kept.read_text() == '{"records": ["an earlier run"]}'
    assert sorted(p.name for p in pytester.path.glob("*.json*")) == ["kept.json", "report.json"]  # no temp file


def test_a_hostile_str_is_described_not_raised():
    class Hostile(Exception):
        def __str__(self):
            return 3  # not a str: str() raises TypeError
    assert described(Hostile()) == "Hostile: <its message could not be read: TypeError in __str__>"
    assert described(KeyboardInterrupt()) == "KeyboardInterrupt"


MINE_WAITS = '''
import time
from nlpspec import parametrize_with_checks

finished = []


@parametrize_with_checks("reference")
def test_mine(nlpspec_case, nlpspec_verdict):
    if len(finished) == 3:  # the fourth case waits for the signal, however fast the first three were
        time.sleep(300)
    nlpspec_verdict(nlpspec_case)
    finished.append(nlpspec_case)
'''


@pytest.mark.parametrize("workers", [(), ("-n", "1")], ids=["one process", "xdist"])  # one worker: the records cross execnet all the same
def test_sigterm_keeps_every_finished_record_and_says_so(tmp_path, workers):
    """`timeout` and a CI's cancel send SIGTERM: the report keeps what finished and names the stop.
    The run waits in its fourth case, so the signal always comes mid-run (a run of the whole reference
    with 2 examples each once finished, in 5.8 s, before the signal was sent)."""
    (tmp_path / "test_mine.py").write_text(MINE_WAITS)
    path = tmp_path / "report.json"
    run = subprocess.Popen(pytest_command(*workers, "-q", "test_mine.py", "--nlpspec-max-examples", "2",
                                          "--nlpspec-report", str(path)),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len((read(path) or {}).get("records", [])) < 3:
            time.sleep(0.1)
        seen = read(path)["records"]
        assert seen, "no record within 120 s"
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 2, out[-3000:]  # interrupted, as by Ctrl-C
    report = read(path)
    last = out.strip().splitlines()[-1]  # pytest's count: "15 passed, 2 skipped in 27.65s"
    finished = sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed|skipped|xfailed|xpassed|errors?)\b", last))
    assert len(report["records"]) == finished >= len(seen), out[-2000:]
    assert report["records"][:len(seen)] == seen
    assert report["error"].startswith(f"the run was stopped by SIGTERM: {finished} of ")
    assert report["stopped"].startswith("stopped by SIGTERM: ")


MINE_DIES = '''
import ctypes
import os
from nlpspec import parametrize_with_checks


@parametrize_with_checks("reference")
def test_mine(nlpspec_case, nlpspec_verdict):
    if nlpspec_case.check.name == "determinism":
        {dies}
    nlpspec_verdict(nlpspec_case)
'''


# under xdist, no replacement for the dead worker (--max-worker-restart=0): the controller's record
# of the crash is the same, and the replacement's start-up (imports, collection) was a third of the run
@pytest.mark.parametrize("workers, dies", [((), "os._exit(0)"), ((), "ctypes.string_at(0)"),
                                           (("-n", "1", "--max-worker-restart=0"), "os._exit(0)")],
                         ids=["os._exit", "segfault", "os._exit under xdist"])
def test_a_process_that_dies_leaves_a_report_naming_its_case(tmp_path, workers, dies):
    (tmp_path / "test_mine.py").write_text(MINE_DIES.format(dies=dies))
    path = tmp_path / "report.json"
    done = subprocess.run(pytest_command(*workers, "test_mine.py", "-k", "rnn.cell-oracle or rnn.cell-determinism",
                                         "--nlpspec-report", str(path)),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = read(path)
    dying = "test_mine.py::test_mine[rnn.cell-determinism-rnn.cell]"
    if workers:  # pytest-xdist sees its worker die: an error record names the case
        assert done.returncode == 1, done.stdout[-3000:]
        [error] = [r for r in report["records"] if r["status"] == "error"]
        assert error["nodeid"] == dying and "crashed while running" in error["message"], error
    else:  # the process ends at once (exit 0, or SIGSEGV): the report written as the case started names it
        assert done.returncode in (0, -signal.SIGSEGV), done.stdout[-3000:]
        assert report["error"] == f"the run has not finished: it was running {dying} when this report was written"
        assert report["running"] == [dying]
    assert [r["status"] for r in report["records"] if r["check"] == "oracle"] == ["pass"]


@pytest.mark.parametrize("where", ["under a file", "read-only folder", "a folder"])
def test_an_unwritable_report_path_is_a_one_line_usage_error(run_pytest, tmp_path, where):
    """In-process (pytester): the usage error comes before any case, so a process of its own adds
    nothing but a start-up; an INTERNALERROR would be exit 3 and a traceback here as well."""
    (tmp_path / "file").write_text("")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    if os.access(folder, os.W_OK):  # root writes anywhere: /proc is read-only to root as well
        folder = pathlib.Path("/proc")
    path = {"under a file": tmp_path / "file" / "report.json", "read-only folder": folder / "nlpspec" / "report.json",
            "a folder": tmp_path}[where]
    done, _ = run_pytest("--nlpspec-report", str(path))  # the last --nlpspec-report is the one taken
    lines = [line for line in done.outlines + done.errlines if line.strip()]
    assert done.ret == 4 and len(lines) == 1, lines
    assert lines[0].startswith(f"ERROR: --nlpspec-report {path}: "), lines


def test_a_bad_device_stops_the_run_before_any_case_even_quiet(run_pytest):
    """-q prints no header, where the device was first resolved: each case failed with the usage error."""
    done, report = run_pytest("-q", "--subject", "reference", "--device", "nosuch")
    lines = [line for line in done.outlines + done.errlines if line.strip()]
    assert done.ret == 4 and len(lines) == 1 and lines[0].startswith("ERROR: --device nosuch: "), lines
    assert report["records"] == [] and report["error"].startswith("--device nosuch: ")


def test_the_report_names_totals_versions_seed_and_command(run_pytest, pytester):
    import hypothesis
    import torch
    done, report = run_pytest("--subject", "zoo.rnn_bias_dropped", "-k", "rnn.cell-oracle or rnn.cell-determinism",
                              "--hypothesis-profile", "dev", "--hypothesis-seed", "7")
    assert done.ret == 1, done.stdout.str()[-2000:]
    assert report["seed"] == 7 and report["profile"] == "dev" and report["collected"] == 2
    assert report["totals"] == {"fail": 1, "pass": 1} and report["running"] == []
    assert report["versions"] == {"nlpspec": "0.2.0", "python": ".".join(map(str, sys.version_info[:3])),
                                  "torch": torch.__version__, "hypothesis": hypothesis.__version__,
                                  "pytest": pytest.__version__, "subject": report["version"]}
    assert report["command"].startswith("pytest ") and report["command"].endswith(
        "-k 'rnn.cell-oracle or rnn.cell-determinism' --hypothesis-profile dev --hypothesis-seed 7")
    _, report = run_pytest("--subject", "reference", "-k", "rnn.cell-oracle")  # the ci profile is derandomised
    assert report["seed"] is None


def test_a_run_that_runs_nothing_leaves_an_earlier_report(run_pytest, pytester):
    """A failing run's report outlives a later run that only collects, or selects no test."""
    done, first = run_pytest("--subject", "zoo.rnn_bias_dropped", "-k", "rnn.cell-oracle")
    assert done.ret == 1 and first["totals"] == {"fail": 1}
    for args in (("--collect-only",), ("-k", "no-such-check")):
        again, report = run_pytest("--subject", "reference", *args)
        assert again.ret in (0, 5) and report == first, args


def test_the_site_reads_an_error_record_as_a_failure(tmp_path):
    """The conformance page and the catalogue's "implemented by" count an `error` record as a failure."""
    from nlpspec.docs.catalogue import found_in
    from nlpspec.docs.conformance import page
    from nlpspec.report_file import error_record
    passed = {"subject": "s", "component": "layernorm", "check": "oracle", "eids": ["layernorm"], "status": "pass",
              "message": "", "variant": "", "options": {}, "option_set": ""}
    errored = error_record("test_x.py::test_x[layernorm-bounds]", "SystemExit: 3") | {
        "component": "layernorm", "check": "bounds", "eids": ["layernorm"]}
    run = {"subject": "s", "device": "cpu", "dtype": "float64", "records": [passed, errored]}
    assert found_in("layernorm", [run]) == []
    (tmp_path / "s.json").write_text(json.dumps(run))
    html = page([tmp_path / "s.json"])
    assert re.search(r'<th><code>layernorm</code></th><td class="fail">', html), html[:3000]
