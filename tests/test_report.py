"""The end-of-run summary and the JSON report, from a real pytest run."""
import json
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.selftest


def run_pytest(tmp_path, *args, env=None, cwd=None):
    report = tmp_path / "report.json"
    profile = () if "--hypothesis-profile" in args else ("--hypothesis-profile", "ci")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "--pyargs", "nlpspec", *profile,
                           "--nlpspec-report", str(report), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    return done, json.loads(report.read_text())


def test_summary_and_json_name_the_variant_and_the_failure(tmp_path):
    done, report = run_pytest(tmp_path, "--subject", "torch", "-k",
                              "gru.cell-oracle or rnn.cell-oracle or (mha-fully_masked_row and seq_first)")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "nlpspec: subject torch" in done.stdout  # the report header
    lines = [line.split() for line in done.stdout.splitlines()]
    assert "gru.cell: every run as variant gru.reset_after" in done.stdout.splitlines()
    assert ["gru.reset_after", "pass"] in lines
    assert "mha: every run as variant mask.bool_true_masked" in done.stdout.splitlines()
    assert ["mask.bool_true_masked", "pass"] in lines
    assert "  mha, mode=seq_first: a query with every key hidden gives NaN" in done.stdout.splitlines()
    assert report["subject"] == "torch" and report["dtype"] == "float64"
    assert {(r["id"], r["status"], r["variant"]) for r in report["records"]} == {
        ("gru.cell-oracle", "pass", "gru.reset_after"), ("rnn.cell-oracle", "pass", ""),
        ("mha-fully_masked_row", "pass", "mask.bool_true_masked")}

    done, report = run_pytest(tmp_path, "--subject", "zoo.rnn_bias_dropped", "-k", "rnn.cell-oracle")
    assert done.returncode == 1
    assert any(line.split() == ["rnn.cell", "fail", "(oracle)"] for line in done.stdout.splitlines())
    assert "reproduce: pytest --pyargs nlpspec --subject zoo.rnn_bias_dropped --device cpu --dtype float64 " \
           "--hypothesis-profile ci --nlpspec-check rnn.cell-oracle-rnn.cell --nlpspec-replay " in done.stdout
    [record] = report["records"]
    assert record["status"] == "fail" and record["message"].startswith("[rnn.cell]")


def record(check, status, variant, options):
    return {"component": "decoder.layer", "check": check, "eids": ["dec.self"], "status": status,
            "variant": variant, "options": options, "message": ""}


def test_summary_keeps_each_variant_apart():
    """A mode that runs a variant (torch's gelu) must not relabel the modes that run the article's
    equation (post_ln), nor hide a failure of one mode behind another's pass; each way the component
    ran is named once."""
    from nlpspec.properties.summary import summary
    lines = summary([record("oracle", "pass", "", {"mode": "post_ln"}),
                     record("oracle", "pass", "", {"mode": "seq_first"}),
                     record("oracle", "pass", "ffn.gelu", {"mode": "gelu"}),
                     record("causal", "fail", "ffn.gelu", {"mode": "gelu"})])
    assert lines == ["decoder.layer: a = mode=post_ln, seq_first: as the article",
                     "               b = mode=gelu: as variants ffn.gelu",
                     "  dec.self  pass (a); fail (causal) (b)"]
    assert summary([record("oracle", "pass", "dec.self.pre_ln", {"mode": "pre_ln"})]) == [
        "decoder.layer: every run as variant dec.self.pre_ln", "  dec.self  pass"]


def test_summary_lines_fit_and_absent_components_share_one_line():
    from nlpspec.properties.summary import WIDTH, summary
    long = ", ".join(f"variant.number_{k}" for k in range(12))
    skipped = [{**record("oracle", "skip", "", {}), "component": name} for name in ("rnn.cell", "gru.cell", "pe")]
    lines = summary([record("oracle", "pass", long, {"mode": "a"}), record("oracle", "fail", "", {"mode": "b"})]
                    + skipped)
    assert all(len(line) <= WIDTH for line in lines), lines
    assert lines[-1] == "not offered (skipped): gru.cell, pe, rnn.cell"
    assert sum("variant.number_3" in line for line in lines) == 1


def test_every_failure_says_how_to_reproduce_it(tmp_path):
    """Not only a value error: a subject that changes its inputs in place, too."""
    done, report = run_pytest(tmp_path, "--subject", "zoo.lstm_state_in_place", "-k", "lstm.cell-oracle")
    assert done.returncode == 1
    [record] = report["records"]
    assert "modified its input" in record["message"]
    assert "reproduce: pytest --pyargs nlpspec --subject zoo.lstm_state_in_place " in record["message"]
    assert "--nlpspec-check lstm.cell-oracle-lstm.forget+" in record["message"]


def test_the_reproduce_line_replays_the_failure_exactly_in_a_fresh_process(tmp_path):
    """A LayerNorm wrong only at d = 3, B = 2, found under a random seed: its printed line, run in a
    new process with the example database there or not, fails again with the very same message."""
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent)}
    first = tmp_path / "first"
    first.mkdir()
    done, report = run_pytest(first, "--subject", "bad_subjects:LAYERNORM_WRONG_AT", "-k", "layernorm-oracle",
                              "--hypothesis-profile", "thorough", env=env, cwd=first)
    assert done.returncode == 1, done.stdout[-3000:]
    [failed] = [r for r in report["records"] if r["status"] == "fail"]
    [failure] = failed["failures"]
    line = next(l.strip() for l in failure["message"].splitlines() if l.strip().startswith("reproduce: "))
    command = shlex.split(line.removeprefix("reproduce: "))
    assert command[0] == "pytest" and "--nlpspec-replay" in command
    for where in (first, tmp_path / "elsewhere"):  # with the first run's example database, and without any
        where.mkdir(exist_ok=True)
        again = subprocess.run([sys.executable, "-m", *command, "--nlpspec-report", str(where / "again.json")],
                               capture_output=True, text=True, timeout=300, env=env, cwd=where)
        assert again.returncode == 1, again.stdout[-3000:]
        [replayed] = json.loads((where / "again.json").read_text())["records"]
        assert replayed["failures"] == [failure], "\n".join(__import__("difflib").unified_diff(failure["message"].splitlines(), replayed["failures"][0]["message"].splitlines(), lineterm=""))


def test_hypothesis_show_statistics_reports_the_checks(tmp_path):
    done, _ = run_pytest(tmp_path, "-k", "rnn.cell-oracle", "--hypothesis-show-statistics")
    section = done.stdout.split("Hypothesis Statistics", 1)[-1]
    assert "test_conformance[rnn.cell-oracle-rnn.cell]:" in section
    assert "50 passing examples, 0 failing examples" in section


def test_parametrize_with_checks_puts_the_checks_into_a_test_file_of_ones_own(tmp_path):
    """A maintainer's own test file, with its own subject: every case runs, and a failure's reproduce
    line names that file's test, not nlpspec's."""
    (tmp_path / "test_mine.py").write_text(
        "from nlpspec import parametrize_with_checks, load_subject\n\n\n"
        "@parametrize_with_checks(load_subject('zoo.rnn_bias_dropped'))\n"
        "def test_mine(nlpspec_case, nlpspec_verdict):\n"
        "    nlpspec_verdict(nlpspec_case)\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", "test_mine.py", "-k", "rnn.cell",
                           "--hypothesis-profile", "ci", "-p", "no:cacheprovider"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "FAILED test_mine.py::test_mine[rnn.cell-oracle-rnn.cell]" in done.stdout
    assert "reproduce: pytest 'test_mine.py::test_mine[rnn.cell-oracle-rnn.cell]' --device cpu" in done.stdout
    assert "zoo.rnn_bias_dropped" in done.stdout.split("nlpspec conformance:")[1].splitlines()[0]
