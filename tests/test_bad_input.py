"""Bad input gets a clear failure that names subject and component, never a crash in the suite."""
import pathlib

import pytest
import torch
from hypothesis import Phase, settings

from bad_subjects import DECLARATIONS, HANGS, SUBJECTS, TWO_BUGS, WRONG_ONCE
from nlpspec.properties.runner import check_subject
from nlpspec.subjects.protocol import SubjectLoadError
from nlpspec.subjects.registry import load_subject

pytestmark = pytest.mark.selftest
HERE = pathlib.Path(__file__).parent
QUICK = settings(max_examples=10, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def oracle_record(name, dtype=torch.float64, check="oracle"):
    records = check_subject(SUBJECTS[name], "cpu", dtype, QUICK, components=["rnn.cell", "lstm.cell", "attention"])
    return next(r for r in records if r.check == check and r.status != "skip")


def test_weights_that_do_not_sum_to_one_are_named_by_the_bounds_check():
    record = oracle_record("weights_not_summing_to_one", check="bounds")
    assert record.status == "fail" and "has a row summing to" in record.message and "[self.attention]" in record.message


@pytest.mark.parametrize("name, words", [
    ("builder_raises", "builder raised ValueError: no weights for you"),
    ("call_raises", "the subject raised ZeroDivisionError"),
    ("wrong_shape", "has shape"),
    ("wrong_dtype", "has dtype torch.float32, but was asked for torch.float64 (it returns a lower precision"),
    ("wrong_device", "is on meta, but the suite runs on cpu"),
    ("nan", "is nan at index"),
    ("mutates", "modified its input 'h_prev' in place"),
    ("mutates_params", "modified its parameter 'b_h' in place"),
    ("not_a_dict", "returned a list; expected a dict of tensors"),
    ("missing_output", "returned no 'h' (it returned 'hidden')"),
    ("float32_inside", "precision: the subject computes in float32 in a float64 run"),
    ("mask_flipped_in_place", "modified its input 'mask' in place"),
    ("builder_returns_none", "the adapter's builder returned NoneType, not a callable"),
    ("unknown_output", "returned 'Chat_', which the spec does not define for lstm.cell; known outputs: "),
])
def test_misbehaviour_is_named(name, words):
    record = oracle_record(name)
    assert record.status == "fail"
    assert words in record.message
    assert f"subject {name!r}" in record.message


@pytest.mark.parametrize("words", sorted(DECLARATIONS))
def test_an_unknown_declaration_is_a_one_line_usage_error(words):
    with pytest.raises(SubjectLoadError) as caught:
        check_subject(DECLARATIONS[words], "cpu", torch.float64, QUICK)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_declaration_stops_pytest_and_the_report_says_why(run_pytest, pytester):
    report = pytester.path / "report.json"
    report.write_text('{"records": ["an old run"]}')
    done, written = run_pytest("-q", "--subject", "bad_subjects:SUBJECT_WITH_TYPO")
    assert done.ret == 4, done.stdout.str() + done.stderr.str()
    assert "ERROR: subject 'typo': unknown component 'lstm.celll' (did you mean 'lstm.cell'?); known: " in \
        done.stderr.str()
    assert written["records"] == [] and "unknown component 'lstm.celll'" in written["error"]


def test_batch_rows_that_move_between_calls_are_called_non_deterministic():
    record = oracle_record("noisy", check="batch_independence")
    assert record.status == "fail" and "the subject is not deterministic" in record.message, record.message


def test_a_failure_that_does_not_reproduce_is_called_non_deterministic():
    [record] = check_subject(WRONG_ONCE, "cpu", torch.float64, settings(QUICK, phases=list(Phase)[:-1]),
                             components=["rnn.cell"], checks=["oracle"])
    assert record.status == "fail" and "the subject is not deterministic" in record.message, record.message
    assert [f["kind"] for f in record.failures] == ["nondeterministic"]


def test_a_hanging_subject_is_reported_as_hanging_and_the_run_goes_on():
    from nlpspec.properties.engine.harness import Run
    from nlpspec.properties.case import cases
    from nlpspec.properties.runner import execute
    outcomes = {}
    for case in cases(HANGS):
        if case.check.name == "oracle" and case.component.name in ("rnn.cell", "rnn.output"):
            record = execute(Run(HANGS, torch.device("cpu"), torch.float64, time_limit=0.5), case.component,
                             case.check, QUICK)
            outcomes[case.component.name] = record
    assert outcomes["rnn.cell"].status == "fail"
    assert "subject 'hangs', component rnn.cell: the subject did not return within 0.5 s" in outcomes["rnn.cell"].message
    assert outcomes["rnn.output"].status == "pass"


def test_several_distinct_failures_are_each_reported_with_their_own_replay():
    records = check_subject(TWO_BUGS, "cpu", torch.float64, settings(QUICK, max_examples=100,
                            phases=list(Phase)[:-1]), components=["rnn.cell"], checks=["oracle"])
    [record] = records
    assert record.status == "fail" and len(record.failures) == 2, record.message
    messages = sorted(f["message"] for f in record.failures)
    assert "modified its input 'h_prev' in place" in messages[1] and "disagrees with the oracle" in messages[0]
    assert len({f["replay"] for f in record.failures}) == 2 and all(f["replay"] for f in record.failures)


def test_wrong_equation_is_not_called_precision():
    record = oracle_record("off_by_one")  # h + 1
    assert record.status == "fail"
    assert "value: the subject computes a different function" in record.message
    assert "precision" not in record.message


def test_expected_failure_that_fails_is_xfail_with_its_reason():
    record = oracle_record("xfail")  # h + 1, declared
    assert record.status == "xfail" and record.message == "known off by one"


def test_expected_failure_that_passes_is_stale():
    record = oracle_record("stale")
    assert record.status == "stale" and "remove it from expected_failures" in record.message


def test_component_not_offered_is_skipped_with_its_name():
    records = check_subject(SUBJECTS["stale"], "cpu", torch.float64, QUICK, components=["lstm.cell"])
    assert records and all(r.status == "skip" and "lstm.cell" in r.message for r in records)


@pytest.mark.parametrize("name, words", [
    ("nosuch", "unknown subject 'nosuch': the built-ins are reference, torch"),
    ("no.such:thing", "importing 'no.such' failed: ModuleNotFoundError"),
    ("nlpspec.subjects:nothing_here", "module 'nlpspec.subjects' has no attribute 'nothing_here'"),
    ("nlpspec.subjects.registry:BUILTINS", "is a dict, not an nlpspec.Subject"),
    ("zoo.nosuch", "unknown mutant 'zoo.nosuch'"),
])
def test_unknown_subject_is_a_one_line_error(name, words):
    with pytest.raises(SubjectLoadError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_subject(name)


def test_unknown_subject_stops_pytest_with_usage_error(run_pytest):
    done, written = run_pytest("-q", "--subject", "no.such:thing")
    assert done.ret == 4  # pytest's usage error
    assert "ERROR: subject 'no.such:thing': importing 'no.such' failed" in done.stderr.str()
    assert "importing 'no.such' failed" in written["error"]


def test_a_refusal_is_accepted_only_where_no_output_is_defined():
    """An all-padded batch has no value anywhere in the spec: a subject may refuse it (reported);
    where any output is defined, raising is a failure."""
    import numpy as np

    from nlpspec.properties.suite import COMPONENTS
    from nlpspec.properties.engine.failures import SubjectFailure
    from nlpspec.properties.engine.harness import Harness, Run

    def refuses(**inputs):
        raise RuntimeError("empty batch")
    harness = Harness(Run(load_subject("reference"), torch.device("cpu"), torch.float64), COMPONENTS["attention"])
    nothing = {"out": np.full((1, 2, 3), np.nan)}
    assert np.isnan(harness.call(refuses, {}, nothing)["out"]).all()
    assert harness.observations == {"raises RuntimeError where the spec defines no output at all (empty batch)"}
    with pytest.raises(SubjectFailure, match="the subject raised RuntimeError: empty batch"):
        harness.call(refuses, {}, {"out": np.where(np.arange(3) == 0, np.nan, 1.0) * np.ones((1, 2, 3))})


def test_an_overflowed_gradient_is_not_judged_but_a_nan_leak_is():
    """float16's backward of a LayerNorm on a constant row overflows, and the mask's 0 times inf is
    NaN at hidden positions too: that sequence cannot tell an exact 0 (noted). A NaN at a hidden
    position while the visible ones are finite is a leak."""
    import numpy as np

    from nlpspec.properties.engine.check import first_nonzero
    from nlpspec.properties.suite import COMPONENTS
    from nlpspec.properties.engine.harness import Harness, Run
    harness = Harness(Run(load_subject("reference"), torch.device("cpu"), torch.float16), COMPONENTS["decoder"])
    hidden = np.array([[[False], [True]], [[False], [True]]])  # (batch 2, positions 2, 1 feature)
    overflowed = np.array([[[np.nan], [np.nan]], [[1.0], [0.0]]])
    assert first_nonzero(overflowed, hidden, harness, "causal") is None
    assert any("not judged" in note for note in harness.observations)
    leaking = np.array([[[1.0], [np.nan]], [[1.0], [0.0]]])
    assert first_nonzero(leaking, hidden, harness, "causal") == (0, 1, 0)


def test_a_value_just_outside_its_range_is_printed_in_full():
    """tanh's range is [-1, 1]: a state at -1 - 1e-7 is named with all its digits, never as
    "-1 outside [-1, 1]"."""
    from nlpspec import Subject

    def past_minus_one(params):
        return lambda x, h_prev: {"h": torch.full_like(h_prev, -1 - 1e-7)}
    [record] = check_subject(Subject("past", {"rnn.cell": past_minus_one}), "cpu", torch.float64, QUICK,
                             components=["rnn.cell"], checks=["bounds"])
    assert record.status == "fail" and "output 'h' is -1.0000001000000001 at [0, 0], outside [-1.0, 1.0]" in \
        record.message, record.message
