"""The end-of-run summary and the JSON report, from a real pytest run."""
import difflib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.selftest


def test_summary_and_json_name_the_variant_and_the_failure(run_pytest):
    done, report = run_pytest("--subject", "torch", "-k",
                              "gru.cell-oracle-eager or rnn.cell-oracle-eager or (mha-fully_masked_row and seq_first)")
    assert done.ret == 0, done.stdout.str()[-2000:]
    assert "nlpspec: subject torch" in done.stdout.str()  # the report header
    lines = [line.split() for line in done.outlines]
    assert "gru.cell: every run as variant gru.reset_after" in done.outlines
    assert ["gru.reset_after", "pass"] in lines
    assert "mha: every run as variant mask.bool_true_masked" in done.outlines
    assert ["mask.bool_true_masked", "pass"] in lines
    assert "  mha, mode=seq_first: a query with every key hidden gives NaN" in done.outlines
    assert report["subject"] == "torch" and report["dtype"] == "float64"
    assert {(r["id"], r["status"], r["variant"]) for r in report["records"]} == {
        ("gru.cell-oracle", "pass", "gru.reset_after"), ("rnn.cell-oracle", "pass", ""),
        ("mha-fully_masked_row", "pass", "mask.bool_true_masked")}

    done, report = run_pytest("--subject", "zoo.rnn_bias_dropped", "-k", "rnn.cell-oracle")
    assert done.ret == 1
    assert any(line.split() == ["rnn.cell", "fail", "(oracle)"] for line in done.outlines)
    assert "reproduce: pytest --pyargs nlpspec --subject zoo.rnn_bias_dropped --device cpu --dtype float64 " \
           "--hypothesis-profile ci --nlpspec-check rnn.cell-oracle-rnn.cell --nlpspec-replay " in done.stdout.str()
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


def test_summary_names_named_option_sets_by_their_names():
    from nlpspec.properties.summary import summary
    lines = summary([{**record("oracle", "pass", "", {}), "option_set": "post_ln"},
                     {**record("oracle", "pass", "dec.self.pre_ln", {"norm_first": True}), "option_set": "pre_ln"}])
    assert lines[:2] == ["decoder.layer: a = post_ln: as the article",
                         "               b = pre_ln: as variants dec.self.pre_ln"]


def test_a_failure_without_intermediates_marks_the_component_not_every_equation():
    """A library returns h, not its gates: a failure there says nothing of which gate is wrong."""
    from nlpspec.properties.summary import summary
    gates = ["gru.reset", "gru.update", "gru.candidate"]
    whole = {"component": "gru.cell", "check": "oracle", "eids": gates + ["gru.hidden"], "status": "fail",
             "variant": "", "options": {}, "message": "", "returned": ["h"], "unreturned": gates}
    bounds = {**whole, "check": "bounds", "status": "pass"}
    assert summary([whole, bounds]) == [
        "gru.cell",
        "  outputs compared: h; gru.candidate, gru.reset, gru.update judged through them (not returned: a failure "
        "marks gru.cell,",
        "    not an equation)",
        "  gru.reset      pass", "  gru.update     pass", "  gru.candidate  pass", "  gru.hidden     pass",
        "  gru.cell       fail (oracle)"]
    returned_gates = {**whole, "returned": ["h", "r", "z", "htilde"], "unreturned": []}
    assert "  gru.update     fail (oracle)" in summary([returned_gates])


def test_summary_lines_fit_and_absent_components_share_one_line():
    from nlpspec.properties.summary import WIDTH, summary
    long = ", ".join(f"variant.number_{k}" for k in range(12))
    skipped = [{**record("oracle", "skip", "", {}), "component": name} for name in ("rnn.cell", "gru.cell", "pe")]
    lines = summary([record("oracle", "pass", long, {"mode": "a"}), record("oracle", "fail", "", {"mode": "b"})]
                    + skipped)
    assert all(len(line) <= WIDTH for line in lines), lines
    assert lines[-1] == "not offered (skipped): gru.cell, pe, rnn.cell"
    assert sum("variant.number_3" in line for line in lines) == 1


def test_every_failure_says_how_to_reproduce_it_and_statistics_are_reported(run_pytest):
    """Not only a value error: a subject that changes its inputs in place, too. And
    `--hypothesis-show-statistics` reports the checks' statistics, passing or failing."""
    done, report = run_pytest("--subject", "zoo.lstm_state_in_place", "-k", "lstm.cell-oracle or rnn.cell-oracle",
                              "--hypothesis-show-statistics")
    assert done.ret == 1
    [record] = [r for r in report["records"] if r["status"] == "fail"]
    assert "modified its input" in record["message"]
    assert "reproduce: pytest --pyargs nlpspec --subject zoo.lstm_state_in_place " in record["message"]
    assert "--nlpspec-check lstm.cell-oracle-lstm.forget+" in record["message"]
    section = done.stdout.str().split("Hypothesis Statistics", 1)[-1]
    # each case's statistics, under its node id, with its number of examples (the ci profile's 50);
    # how Hypothesis words them is its own
    passing = section.split("test_conformance[rnn.cell-oracle-rnn.cell]:", 1)[1].split("test_conformance[", 1)[0]
    assert re.search(r"\b50\b", passing), passing
    assert [r["examples"] for r in report["records"] if r["id"] == "rnn.cell-oracle"] == [50]
    assert "test_conformance[lstm.cell-oracle-lstm.forget+" in section


def test_the_reproduce_line_replays_the_failure_exactly_in_a_fresh_process(run_pytest, tmp_path):
    """A LayerNorm wrong only at d = 3, B = 2, found under a random seed: its printed line fails again
    with the very same message, run where the search left its example database (in this process)
    and in a fresh process with no database."""
    done, report = run_pytest("--subject", "bad_subjects:LAYERNORM_WRONG_AT", "-k", "layernorm-oracle",
                              "--hypothesis-profile", "thorough")
    assert done.ret == 1, done.stdout.str()[-3000:]
    [failed] = [r for r in report["records"] if r["status"] == "fail"]
    [failure] = failed["failures"]
    line = next(l.strip() for l in failure["message"].splitlines() if l.strip().startswith("reproduce: "))
    command = shlex.split(line.removeprefix("reproduce: "))
    assert command[0] == "pytest" and "--nlpspec-replay" in command

    def same(replayed):
        assert replayed["failures"] == [failure], "\n".join(difflib.unified_diff(
            failure["message"].splitlines(), replayed["failures"][0]["message"].splitlines(), lineterm=""))
    again, replayed = run_pytest(*command[1:], pyargs=False)  # the example database of the search is here
    assert again.ret == 1, again.stdout.str()[-3000:]
    same(*replayed["records"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = subprocess.run([sys.executable, "-m", *command, "--nlpspec-report", str(elsewhere / "again.json")],
                           capture_output=True, text=True, timeout=300, cwd=elsewhere,
                           env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent)})
    assert again.returncode == 1, again.stdout[-3000:]
    same(*json.loads((elsewhere / "again.json").read_text())["records"])


def test_parametrize_with_checks_puts_the_checks_into_a_test_file_of_ones_own(run_pytest, pytester):
    """A maintainer's own test file, with its own subject: its cases run, and a failure's reproduce
    line names that file's test, not nlpspec's."""
    (pytester.path / "test_mine.py").write_text(
        "from nlpspec import parametrize_with_checks, load_subject\n\n\n"
        "@parametrize_with_checks(load_subject('zoo.rnn_bias_dropped'))\n"
        "def test_mine(nlpspec_case, nlpspec_verdict):\n"
        "    nlpspec_verdict(nlpspec_case)\n")
    done, _ = run_pytest("-q", "test_mine.py", "-k", "rnn.cell-oracle or rnn.cell-determinism", pyargs=False)
    out = done.stdout.str()
    assert done.ret == 1, out[-2000:]
    assert "FAILED test_mine.py::test_mine[rnn.cell-oracle-rnn.cell]" in out
    assert "reproduce: pytest 'test_mine.py::test_mine[rnn.cell-oracle-rnn.cell]' --device cpu" in out
    assert "zoo.rnn_bias_dropped" in out.split("nlpspec conformance:")[1].splitlines()[0]


def test_the_report_is_written_into_a_folder_not_yet_made(run_pytest, tmp_path):
    """.ci/run writes artefacts/reports/NAME.json on a clean clone; the report names its profile."""
    path = tmp_path / "artefacts" / "reports" / "reference.json"
    done, _ = run_pytest("--subject", "reference", "-k", "rnn.cell-oracle", "--nlpspec-report", str(path))
    assert done.ret == 0, done.stdout.str()[-2000:]
    found = json.loads(path.read_text())
    assert found["profile"] == "ci" and [r["id"] for r in found["records"]] == ["rnn.cell-oracle"]
