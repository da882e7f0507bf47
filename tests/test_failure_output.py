"""Failure output a person reads (issue 22): each cause once, the comparison stated once, a compact
example, the subject's own file and line where its code raised, a header line on every run of the
cases, an unknown profile as a one-line usage error, a stop at the first failing check, a cap on
examples. The three planted bugs of tests/planted/ are run as a user runs them."""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import torch
from hypothesis import Phase, settings
from hypothesis import strategies as st

from nlpspec.properties.engine import failures as fail
from nlpspec.properties.engine.check import Check
from nlpspec.properties.engine.harness import Run
from nlpspec.properties.profiles import DESCRIPTIONS
from nlpspec.properties.runner import execute, shrinking_for
from nlpspec.properties.suite import COMPONENTS
from nlpspec.subjects import Subject
from nlpspec.subjects.reference import SUBJECT as REFERENCE

pytestmark = pytest.mark.selftest
HERE = pathlib.Path(__file__).parent
QUICK = ("--nlpspec-max-examples", "20")


def failure_section(out: str) -> list[str]:
    """The lines pytest prints between its FAILURES bar and the next bar (warnings, summary)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("=") and " FAILURES " in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("=") and lines[i].endswith("="))
    return lines[start + 1:end]


def line_of(path: pathlib.Path, words: str) -> int:
    return next(k for k, line in enumerate(path.read_text().splitlines(), 1) if words in line)


@pytest.mark.parametrize("module, component, names", [
    ("unbiased_layernorm", "layernorm", ["[layernorm]", "output 'out' is nan at index"]),
    ("sqrt_dmodel_scale", "mha and (oracle or gradient)", ["[mha.head]", "worst element weights["]),
    ("builder_raises", "lstm.cell", ["the adapter's builder raised KeyError: 'W_forget'"]),
])
def test_a_planted_bug_reads_in_a_few_lines_naming_its_equation(run_pytest, module, component, names):
    done, report = run_pytest("--subject", f"planted.{module}:SUBJECT", "-k", component, *QUICK)
    out = done.stdout.str()
    assert done.ret == 1, out[-3000:]
    section = failure_section(out)
    assert len(section) <= 40, "\n".join(section)
    for words in names:
        assert words in out
    assert "Tensor-likes are not close" not in out and "Greatest absolute difference" not in out  # stated once
    assert "Draw 1" not in out and "printed below as arrays" not in out  # the example, compact
    assert "reproduce: pytest --pyargs nlpspec" in out
    failed = [r for r in report["records"] if r["status"] == "fail"]
    assert failed and all(f["count"] >= 1 and "reproduce: " in f["message"] for r in failed for f in r["failures"])


def test_a_builder_that_raises_shows_the_users_file_and_line_in_the_terminal_and_the_report(run_pytest):
    planted = HERE / "planted" / "builder_raises.py"
    raised_at, called_from = line_of(planted, 'params["W_forget"]'), line_of(planted, "W = weights(params)")
    done, report = run_pytest("--subject", "planted.builder_raises:SUBJECT", "-k", "lstm.cell-oracle", *QUICK)
    out = done.stdout.str()
    assert done.ret == 1, out[-3000:]
    assert f"raised at {planted}:{raised_at} in weights: return torch.cat(" in out, out[-3000:]
    assert f"called from {planted}:{called_from} in lstm_cell: W = weights(params)" in out
    assert "properties/engine" not in "\n".join(failure_section(out))  # the suite's own frames are not shown
    [record] = report["records"]
    [failure] = record["failures"]
    assert failure["kind"] == "raised"
    assert [(pathlib.Path(f["file"]).name, f["line"], f["function"]) for f in failure["frames"]] == [
        ("builder_raises.py", called_from, "lstm_cell"), ("builder_raises.py", raised_at, "weights")]
    assert f"builder_raises.py:{raised_at}" in failure["message"]


def test_a_cause_every_check_meets_is_reported_in_full_once(run_pytest):
    """A builder that raises fails every check alike: the first check's report is whole, the others
    are a line each pointing at it; the JSON report keeps every record whole."""
    done, report = run_pytest("--subject", "planted.builder_raises:SUBJECT", "-k", "lstm.cell", *QUICK)
    out = "\n".join(failure_section(done.stdout.str()))
    failed = [r for r in report["records"] if r["status"] == "fail"]
    assert len(failed) > 3
    assert out.count("KeyError: 'W_forget'") == len(failed)
    assert out.count("raised at ") == 1 and out.count("reproduce: ") == 1
    assert out.count("the same failure as lstm.cell-oracle above (same kind, output and equation): ") == len(failed) - 1
    assert all("raised at " in r["failures"][0]["message"] and "reproduce: " in r["failures"][0]["message"]
               for r in failed)


def twice(h, data):
    """A check that meets one cause (a NaN in 'h') from two lines, and another (a NaN in 'C')."""
    which = data.draw(st.integers(0, 2), label="which")
    if which == 0:
        raise fail.not_finite(h.where(), "lstm.hidden", "h", float("nan"), (0, 0), 0.0)
    if which == 1:
        raise fail.not_finite(h.where(), "lstm.hidden", "h", float("nan"), (0, 0), 0.0)
    raise fail.not_finite(h.where(), "lstm.cell", "C", float("nan"), (0, 0), 0.0)


def test_failures_of_a_check_that_share_a_cause_are_one_report_with_a_count():
    """Hypothesis tells failures apart by the line that raised them; one wrong output reached from
    two lines is one report, with the count; another output's stays apart."""
    check = Check("twice", "a test of the runner", lambda h: ("lstm.hidden",), twice)
    quick = settings(max_examples=100, database=None, deadline=None, derandomize=True,
                     phases=(Phase.generate, Phase.shrink))
    record = execute(Run(REFERENCE, torch.device("cpu"), torch.float64), COMPONENTS["lstm.cell"], check, quick)
    assert record.status == "fail"
    by_output = {f["message"].split("output ")[1][:3]: f for f in record.failures}
    assert set(by_output) == {"'h'", "'C'"}, record.message
    assert by_output["'h'"]["count"] == 2 and "(and 1 more example like it" in by_output["'h'"]["message"]
    assert by_output["'C'"]["count"] == 1 and "more example" not in by_output["'C'"]["message"]


def test_the_example_is_summed_up_not_dumped():
    notes = ["Failing test case: test(\n    data=data(...),\n)", "Draw 1 (B): 2", "Draw 2 (n): 5",
             "Draw 3 (entries): <96 bytes of entries, printed below as arrays>", "params.gamma = [0., 0.5]",
             "inputs.x = [[[0.      , 0.      ],\n  [0.      , 0.      ]],\n\n [[0.      , 0.      ],\n"
             "  [0.      , 0.003906]]]", "inputs.mask (True: hidden) = [[0, 0, 0, 0],\n [0, 0, 0, 1]]"]
    assert fail.example_lines(notes) == [
        "  example: B=2, n=5",
        "    params.gamma = [0., 0.5]; inputs.x (2, 2, 2): 0 except [1, 1, 1] = 0.003906",
        "    inputs.mask (True: hidden) (2, 4): 0 except [1, 3] = 1"]


def test_shrinking_has_a_time_budget_and_gives_hypothesis_its_own_back():
    from hypothesis.internal.conjecture import engine
    before = engine.MAX_SHRINKING_SECONDS
    with shrinking_for(7):
        assert engine.MAX_SHRINKING_SECONDS == 7
    assert engine.MAX_SHRINKING_SECONDS == before


def pytest_subprocess(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd or HERE.parent,
                          env={**os.environ, "PYTHONPATH": str(HERE)})


def test_an_unknown_profile_is_a_one_line_usage_error():
    done = pytest_subprocess("--pyargs", "nlpspec", "--hypothesis-profile", "thorogh")
    assert done.returncode == 4, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "thorogh" in lines[0] and all(name in lines[0] for name in DESCRIPTIONS)


def test_the_random_profiles_stay_random_where_ci_is_set():
    """Hypothesis loads its own derandomised "ci" profile where CI is set; nlpspec's dev, thorough and
    scale are random there too (registered without a parent, they took that one's derandomize)."""
    code = ("from nlpspec.properties.profiles import settings_for; "
            "print([settings_for(p).derandomize for p in ('dev', 'thorough', 'scale', 'ci')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CI": "1"})
    assert done.stdout.split() == ["[False,", "False,", "False,", "True]"], done.stdout + done.stderr


def test_help_names_every_option_and_profile():
    out = " ".join(pytest_subprocess("--help").stdout.split())
    for option in ("--subject", "--device", "--dtype", "--nlpspec-report", "--nlpspec-check", "--nlpspec-replay",
                   "--nlpspec-timeout", "--nlpspec-first", "--nlpspec-max-examples", "--hypothesis-profile"):
        assert option in out
    for name, text in DESCRIPTIONS.items():
        assert f"{name}: {' '.join(text.split())}" in out


MINE = ("from nlpspec import parametrize_with_checks, load_subject\n\n\n"
        "@parametrize_with_checks(load_subject('reference'))\n"
        "def test_mine(nlpspec_case, nlpspec_verdict):\n"
        "    nlpspec_verdict(nlpspec_case)\n")


def test_a_run_of_ones_own_test_file_starts_with_the_header_line(run_pytest, pytester):
    (pytester.path / "test_mine.py").write_text(MINE)
    done, _ = run_pytest("test_mine.py", "-k", "layernorm-oracle", "--nlpspec-max-examples", "2", pyargs=False)
    out = done.stdout.str()
    assert done.ret == 0, out[-2000:]
    header = f"nlpspec: subject reference {REFERENCE.version}, device cpu, dtype float64, hypothesis profile ci"
    assert header in out and out.index(header) < out.index("test_mine.py .")


def test_nlpspec_first_stops_at_the_first_failing_check(run_pytest):
    done, report = run_pytest("--subject", "planted.builder_raises:SUBJECT", "-k", "lstm.cell", "--nlpspec-first",
                              *QUICK)
    out = done.stdout.str()
    assert done.ret == 1, out[-2000:]
    done.assert_outcomes(failed=1)
    assert [r["status"] for r in report["records"]] == ["fail"]
    stopped = re.search(r"nlpspec: (stopped after the first failing check \(--nlpspec-first\): (\d+) of (\d+) tests "
                        r"not run)", out)
    assert stopped and int(stopped[2]) == int(stopped[3]) - 1 > 0, out[-2000:]
    assert report["stopped"] == stopped[1]
    assert "error" not in report


def test_x_with_xdist_stops_cleanly(tmp_path):
    """-x under pytest-xdist: a failed run (exit 1, as without xdist), its report saying it stopped."""
    path = tmp_path / "report.json"
    done = pytest_subprocess("-p", "no:randomly", "-n", "1", "-x", "--pyargs", "nlpspec", "--subject",
                             "planted.builder_raises:SUBJECT", "-k", "lstm.cell", "--hypothesis-profile", "ci",
                             *QUICK, "--nlpspec-report", str(path))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    found = json.loads(path.read_text())
    assert "error" not in found and found["stopped"].startswith("stopped after the first failing check (-x)")
    assert "nlpspec: subject builder_raises 0.0.1" in done.stdout


def test_a_subject_whose_version_is_a_str_subclass_runs_under_xdist(tmp_path):
    """torch's version is a TorchVersion (a str subclass), which pytest-xdist cannot send between processes:
    the records travel as plain data, and the report names the version as a string."""
    path = tmp_path / "report.json"
    done = pytest_subprocess("-p", "no:randomly", "-n", "1", "--pyargs", "nlpspec", "--subject", "torch",
                             "-k", "rnn.cell-oracle", *QUICK, "--nlpspec-report", str(path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    records = json.loads(path.read_text())["records"]
    assert records and {r["version"] for r in records} == {str(torch.__version__)}


def test_max_examples_caps_the_examples_of_every_check(run_pytest):
    done, report = run_pytest("--subject", "reference", "-k", "layernorm-oracle or rnn.cell-oracle",
                              "--nlpspec-max-examples", "3")
    assert done.ret == 0, done.stdout.str()[-2000:]
    assert "at most 3 examples a check" in done.stdout.str()
    assert [1 <= r["examples"] <= 3 for r in report["records"]] == [True, True]


def test_a_call_that_raises_shows_the_subjects_own_line():
    """The subject's callable (not only its builder) raising: its own frame, not the suite's."""
    from bad_subjects import SUBJECTS
    from nlpspec.properties.runner import check_subject
    quick = settings(max_examples=5, derandomize=True, database=None, deadline=None,
                     phases=(Phase.explicit, Phase.generate))
    [record] = check_subject(SUBJECTS["call_raises"], "cpu", torch.float64, quick, components=["rnn.cell"],
                             checks=["oracle"])
    [failure] = record.failures
    where = HERE / "bad_subjects.py"
    assert failure["kind"] == "raised" and [(pathlib.Path(f["file"]).resolve(), f["line"]) for f in failure["frames"]] \
        == [(where, line_of(where, '"call_raises": wrapped('))]
    assert f"raised at {failure['frames'][0]['file']}:{failure['frames'][0]['line']} in <lambda>" in failure["message"]
