"""The documentation site, built once per test session for the tests that read it
(tests/test_site.py, tests/test_site_browser.py): the first pytest-xdist worker to ask builds it
under a file lock, the others read it (pytest-xdist's recipe for a once-only session fixture)."""
import json
import os
import pathlib
import sys

import _pytest.pytester
import pytest

from optional import require

pytest_plugins = ["pytester"]
HERE = pathlib.Path(__file__).parent


SKIPPED_LIST = os.environ.get("NLPSPEC_SKIPPED_LIST")  # .ci/run's step 1: the tests it skipped, for step 2


def pytest_collectreport(report):
    """Under NLPSPEC_SKIPPED_LIST, each test file skipped whole (an extra not installed) is listed,
    one node id a line (every process appends: xdist's workers collect too; .ci/run sorts them unique)."""
    if SKIPPED_LIST and report.skipped:
        with open(SKIPPED_LIST, "a") as listed:
            listed.write(report.nodeid + "\n")


def pytest_runtest_logreport(report):
    """Under NLPSPEC_SKIPPED_LIST, each test skipped (what it needs not installed) is listed."""
    if SKIPPED_LIST and report.skipped and not hasattr(report, "wasxfail"):
        with open(SKIPPED_LIST, "a") as listed:
            listed.write(report.nodeid + "\n")


@pytest.fixture
def keep_imported_modules(monkeypatch, tmp_path):
    """pytester forgets, after each in-process run and at the end of the test, the modules imported
    meanwhile; torch registers its operator libraries once per process and fails when a module that
    did is imported again. Forget only the modules of the test's own folders (its test files).
    Set up before pytester, which takes its snapshot when it is made."""
    folder = str(tmp_path.parent)

    class ForgetOwnModules(_pytest.pytester.SysModulesSnapshot):
        def __init__(self, preserve=None):
            super().__init__(preserve=lambda name: not (getattr(sys.modules.get(name), "__file__", None) or "")
                             .startswith(folder))
    monkeypatch.setattr(_pytest.pytester, "SysModulesSnapshot", ForgetOwnModules)


@pytest.fixture
def run_pytest(keep_imported_modules, pytester):
    """pytest run as a user runs it (`--pyargs nlpspec`, the ci profile unless another is named, a
    JSON report), inside this process: pytester's in-process run, which pays no new start-up
    (imports, compiling) for each run; returns (result, the report, or None where none was written).
    A test that must have a fresh process (a reproduce line) runs a subprocess of its own."""
    pytester.syspathinsert(HERE)  # tests/bad_subjects.py

    def run(*args, pyargs=True):
        report = pytester.path / "report.json"
        profile = () if "--hypothesis-profile" in args else ("--hypothesis-profile", "ci")
        result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:benchmark",
                                              *(("--pyargs", "nlpspec") if pyargs else ()), *profile,
                                              "--nlpspec-report", str(report), *args)
        return result, json.loads(report.read_text()) if report.exists() else None
    return run


def build_site(out):
    """The site as `python -m nlpspec.docs --report …` writes it, its conformance page from small reports of
    every built-in subject (two components, three examples: the site's own quick runs are the same code)."""
    from nlpspec.docs.build import main
    from nlpspec.docs.conformance import BUILT_IN, quick_report
    reports = [quick_report(name, out.parent, examples=3, components=["layernorm", "ffn"]) for name in BUILT_IN]
    main(["--out", str(out)] + [arg for path in reports for arg in ("--report", str(path))])


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """(the site's folder, its pages: the sections in order, then index and conformance). The site's
    pictures need graphviz's dot."""
    from filelock import FileLock

    from nlpspec.docs.catalogue import SECTIONS
    require("dot")
    # under xdist each worker's basetemp is a folder of the run's; without it (-p no:xdist) it is the run's
    in_worker = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    shared = tmp_path_factory.getbasetemp().parent if in_worker else tmp_path_factory.getbasetemp()
    out = shared / "site" / "pages"
    with FileLock(str(shared / "site.lock")):
        if not (out / "conformance.html").exists():
            out.mkdir(parents=True, exist_ok=True)
            build_site(out)
    return out, [out / f"{page}.html" for page, _, _, _ in SECTIONS] + [out / "index.html", out / "conformance.html"]
