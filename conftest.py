"""pytest wiring: which subject, device and dtype; Hypothesis profiles; header, summary, JSON.

Options: --subject NAME (or NLPSPEC_SUBJECT), --device, --dtype, --nlpspec-report PATH; profiles
with Hypothesis's own --hypothesis-profile (dev by default, ci when the CI variable is set).
"""
from __future__ import annotations

import json
import os
import random
import warnings
from dataclasses import replace

import pytest
import torch
from hypothesis import settings

import properties.profiles  # noqa: F401  (registers the dev, ci and thorough profiles)
from properties.harness import Run, SubjectFailure
from properties.runner import cases, check_id, execute
from properties.summary import format_table, observations, table
from subjects.registry import SubjectLoadError, load_subject

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pytest_addoption(parser):
    group = parser.getgroup("nlpspec")
    group.addoption("--subject", default=os.environ.get("NLPSPEC_SUBJECT", "reference"),
                    help="implementation to verify: reference (default), torch, or package.module:object "
                         "(default from NLPSPEC_SUBJECT)")
    group.addoption("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    group.addoption("--dtype", default="float64", choices=list(DTYPES), help="dtype the subject runs in")
    group.addoption("--nlpspec-report", default=None, metavar="PATH", help="write the check records as JSON")


def pytest_configure(config):
    config.addinivalue_line("markers", "selftest: tests of nlpspec itself, independent of --subject")
    if config.getoption("hypothesis_profile", None) is None:
        settings.load_profile("ci" if os.environ.get("CI") else "dev")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one thread each
        from threadpoolctl import threadpool_limits
        torch.set_num_threads(1)
        config._nlpspec_threads = threadpool_limits(1)
    try:
        subject = load_subject(config.getoption("subject"))
    except SubjectLoadError as exc:
        raise pytest.UsageError(str(exc)) from None
    device = config.getoption("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:  # the canonical device ("cuda" -> "cuda:0"), as the subject's tensors will report it
        device = torch.empty(0, device=torch.device(device)).device
    except (RuntimeError, AssertionError) as exc:
        raise pytest.UsageError(f"--device {device}: {exc}") from None
    config._nlpspec_run = Run(subject, device, DTYPES[config.getoption("dtype")])
    config._nlpspec_seed = config.getoption("hypothesis_seed", None) or random.randrange(2**32)
    config._nlpspec_records = []


def pytest_report_header(config):
    run = config._nlpspec_run
    return (f"nlpspec: subject {run.subject.name} {run.subject.version}, device {run.device}, "
            f"dtype {str(run.dtype).removeprefix('torch.')}, hypothesis profile {settings._current_profile}")


def pytest_generate_tests(metafunc):
    if "nlpspec_case" in metafunc.fixturenames:
        subject = metafunc.config._nlpspec_run.subject
        params = [pytest.param((component, check, options), id=case_id(component.name, check.name, options))
                  for component, check, options in cases(subject)]
        metafunc.parametrize("nlpspec_case", params)


def case_id(component: str, check: str, options: dict) -> str:
    return check_id(component, check) + "".join(f"-{k}={v}" for k, v in options.items())


def reproduce_command(config, nodeid: str) -> str:
    run = config._nlpspec_run
    command = (f"pytest '{nodeid}' --subject {config.getoption('subject')} --device {run.device} "
               f"--dtype {str(run.dtype).removeprefix('torch.')} --hypothesis-profile {settings._current_profile}")
    if not settings.default.derandomize:
        command += f" --hypothesis-seed {config._nlpspec_seed}"
    return command


@pytest.fixture
def nlpspec_verdict(request, record_property):
    """Run one (component, check, options) case on the chosen subject and report it to pytest."""
    def verdict(component, check, options):
        config = request.config
        run = replace(config._nlpspec_run, options=options, reproduce=reproduce_command(config, request.node.nodeid))
        seed = None if settings.default.derandomize else config._nlpspec_seed
        record, error = execute(run, component, check, seed=seed)
        record_property("nlpspec", record.as_dict())
        if record.status == "skip":
            pytest.skip(record.message)
        if record.status == "xfail":
            pytest.xfail(f"expected failure: {record.message}")
        if record.status == "stale":
            warnings.warn(f"{record.id}: {record.message}", UserWarning, stacklevel=1)
        if isinstance(error, SubjectFailure):
            notes = "\n".join(getattr(error, "__notes__", []))
            pytest.fail(f"{error}\n{notes}", pytrace=False)
        if error is not None:
            raise error
    return verdict


def pytest_runtest_logreport(report):
    for name, value in report.user_properties:
        if name == "nlpspec" and report.when == "call":
            _records.append(value)


_records: list[dict] = []


def pytest_terminal_summary(terminalreporter, config):
    if not _records:
        return
    run = config._nlpspec_run
    terminalreporter.section(f"nlpspec conformance: {run.subject.name} {run.subject.version} "
                             f"({run.device}, {str(run.dtype).removeprefix('torch.')})")
    for line in format_table(table(_records)):
        terminalreporter.write_line(line)
    notes = observations(_records)
    if notes:
        terminalreporter.write_line("observed, not judged (where the spec leaves a value undefined, or a check "
                                    "cannot look), the subject:")
        for line in notes:
            terminalreporter.write_line(f"  {line}")


def pytest_sessionfinish(session):
    config = session.config
    path = config.getoption("nlpspec_report")
    if path and not hasattr(config, "workerinput"):
        run = config._nlpspec_run
        with open(path, "w") as f:
            json.dump({"subject": run.subject.name, "version": run.subject.version, "device": str(run.device),
                       "dtype": str(run.dtype).removeprefix("torch."), "records": _records}, f, indent=1)
