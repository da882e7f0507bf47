"""Hostile subjects are contained: whatever a subject raises or does (pytest's and Hypothesis's control
exceptions, SystemExit, a swallowed time limit, a cancelled alarm, a hanging backward, changed global
state, an output that is not a plain tensor) is that subject's failure, one line naming subject and
component, the run going on; the suite's own arithmetic is immune to what a subject set at import; and
a check in which no example was judged is not a pass."""
import time

import numpy as np
import pytest
import torch
from hypothesis import Phase, settings

from bad_subjects import DETACHED, FORKS, GAMMA_GRADIENT_DOUBLED, HANGING_BACKWARD, HOSTILE
from nlpspec.properties.case import cases
from nlpspec.properties.engine.harness import Run
from nlpspec.properties.runner import check_subject, execute
from nlpspec.subjects.registry import load_subject

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=10, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))
FEW = settings(QUICK, max_examples=3)


def record_of(subject, component="rnn.cell", check="oracle", time_limit=60.0, settings=QUICK):
    """One check as the plugin runs it (with a time limit)."""
    [case] = [c for c in cases(subject) if c.component.name == component and c.check.name == check]
    return execute(Run(subject, torch.device("cpu"), torch.float64, case.options, time_limit=time_limit),
                   case.component, case.check, settings)


def one_line(record, name, component="rnn.cell"):
    head = record.message.splitlines()[0]
    assert record.status == "fail" and f"subject {name!r}, component {component}" in head, record.message
    assert "Traceback" not in record.message
    return head


@pytest.mark.parametrize("name, words", [
    ("skips", "the subject raised Skipped: not today"),
    ("fails_pytest", "the subject raised Failed: from inside"),
    ("exits_pytest", "the subject raised Exit: bye"),
    ("sys_exit", "the subject raised SystemExit: 3"),
    ("os_exit", "the subject raised ProcessExit: os._exit(0) called: it ends the process at once"),
    ("stop_test", "the subject raised StopTest"),
    ("assumes", "the subject raised UnsatisfiedAssumption"),
    ("unprintable", "the subject raised Unprintable: <its message could not be read: RuntimeError in __str__>"),
    ("exits_in_builder", "the adapter's builder raised SystemExit: no"),
    ("grad_off", "the subject changed the process's global state and left it changed: grad mode "
                 "(torch.set_grad_enabled) True -> False (restored"),
    ("default_dtype", "left it changed: default dtype (torch.set_default_dtype) torch.float32 -> torch.float64"),
    ("numpy_raises", "left it changed: NumPy's error state (np.seterr) {'divide': 'warn', 'over': 'warn', "
                     "'under': 'ignore', 'invalid': 'warn'} -> {'divide': 'raise', 'over': 'raise', "
                     "'under': 'raise', 'invalid': 'raise'}"),
    ("timer_signal_ignored", "left it changed: the handler of the suite's timer signal (SIGVTALRM)"),
    ("nested", "output 'h' is a nested tensor, not a plain (strided, dense) torch.Tensor"),
    ("sparse", "output 'h' is a tensor of layout torch.sparse_coo, not a plain"),
    ("subclass", "output 'h' is a Subclassed (a torch.Tensor subclass), not a plain"),
])
def test_what_a_subject_raises_or_does_is_its_failure_in_one_line(name, words):
    record = record_of(HOSTILE[name])
    assert words in one_line(record, name)
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32
    assert np.geterr() == {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


def test_a_process_the_subject_forks_exits_as_it_asks():
    assert record_of(FORKS).status == "pass"


def test_a_time_limit_swallowed_by_a_retry_loop_is_still_a_hang():
    record = record_of(HOSTILE["swallows_time_limit"], time_limit=0.3)
    assert "the subject did not return within 0.3 s" in one_line(record, "swallows_time_limit")
    assert [f["kind"] for f in record.failures] == ["hang"]


def test_a_subject_that_cancels_alarms_cannot_cancel_the_time_limit():
    started = time.monotonic()
    record = record_of(HOSTILE["cancels_alarm"], time_limit=0.5)
    assert "the subject did not return within 0.5 s" in one_line(record, "cancels_alarm")
    assert time.monotonic() - started < 30  # one call of 60 s would be over (a wide margin for a loaded machine)


def test_a_hanging_backward_pass_is_under_the_time_limit():
    started = time.monotonic()
    record = record_of(HANGING_BACKWARD, "layernorm", "gradient", time_limit=0.5)
    assert "the subject's backward pass did not return within 0.5 s" in one_line(record, "hanging_backward",
                                                                                 "layernorm")
    assert time.monotonic() - started < 30  # the backward takes 60 s (a wide margin for a loaded machine)


def test_grad_turned_off_at_import_does_not_make_the_gradient_check_vacuous():
    torch.set_grad_enabled(False)  # as a subject's module may do when imported
    try:
        [record] = check_subject(GAMMA_GRADIENT_DOUBLED, "cpu", torch.float64, QUICK, components=["layernorm"],
                                 checks=["gradient"])
    finally:
        torch.set_grad_enabled(True)
    assert record.status == "fail" and "the gradient with respect to parameter 'gamma' disagrees" in record.message, \
        (record.status, record.message, record.observations)


def test_numpy_set_to_raise_at_import_leaves_the_suites_oracle_alone():
    before = np.seterr(all="raise")  # as a subject's module may do when imported
    try:
        records = check_subject(load_subject("reference"), "cpu", torch.float64, FEW,
                                components=["attention", "layernorm"], checks=["oracle", "gradient", "bounds"])
    finally:
        np.seterr(**before)
    assert records and all(r.status == "pass" for r in records), [(r.id, r.status, r.message) for r in records]


def test_a_check_in_which_no_example_was_judged_is_not_a_pass():
    """An output with no autograd graph (ONNX Runtime's): the gradient check judged nothing, so it is
    skipped, saying why; the forward checks pass."""
    records = {r.check: r for r in check_subject(DETACHED, "cpu", torch.float64, QUICK, components=["layernorm"],
                                                       checks=["oracle", "gradient"])}
    assert records["oracle"].status == "pass"
    gradient = records["gradient"]
    assert gradient.status == "skip" and gradient.message == \
        "no example was judged; no autograd graph: the gradient check is not made", gradient.message


@pytest.mark.parametrize("name", ["skips", "sys_exit", "os_exit"])
def test_under_pytest_a_subject_that_skips_or_exits_is_one_failure_and_the_run_goes_on(run_pytest, name):
    done, written = run_pytest("-q", "--subject", f"bad_subjects:HOSTILE_{name.upper()}", "-k",
                               "rnn.cell-oracle or rnn.cell-bounds")
    out = done.stdout.str()
    assert done.ret == 1 and "2 failed" in out, out
    assert f"subject {name!r}, component rnn.cell: the subject raised" in out and "Traceback" not in out, out
    assert written and [r["status"] for r in written["records"]] == ["fail", "fail"]
