"""The end-of-run summary and the JSON report, from a real pytest run."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.selftest


def run_pytest(tmp_path, *args):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", "tests/test_conformance.py",
                           "--hypothesis-profile", "ci", "--nlpspec-report", str(report), *args],
                          capture_output=True, text=True, timeout=300)
    return done, json.loads(report.read_text())


def test_summary_and_json_name_the_variant_and_the_failure(tmp_path):
    done, report = run_pytest(tmp_path, "--subject", "torch", "-k",
                              "gru.cell-oracle or rnn.cell-oracle or (mha-fully_masked_row and seq_first)")
    assert done.returncode == 0, done.stdout[-2000:]
    assert "nlpspec: subject torch" in done.stdout  # the report header
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["gru.cell", "gru.reset_after", "variant", "gru.reset_after:", "pass"] in lines
    assert ["mha", "mask.bool_true_masked", "variant", "mask.bool_true_masked:", "pass"] in lines
    assert "  mha, mode=seq_first: a query with every key hidden gives NaN" in done.stdout.splitlines()
    assert report["subject"] == "torch" and report["dtype"] == "float64"
    assert {(r["id"], r["status"], r["variant"]) for r in report["records"]} == {
        ("gru.cell-oracle", "pass", "gru.reset_after"), ("rnn.cell-oracle", "pass", ""),
        ("mha-fully_masked_row", "pass", "mask.bool_true_masked")}

    done, report = run_pytest(tmp_path, "--subject", "zoo.rnn_bias_dropped", "-k", "rnn.cell-oracle")
    assert done.returncode == 1
    assert any(line.split() == ["rnn.cell", "rnn.cell", "fail", "(oracle)"] for line in done.stdout.splitlines())
    assert "reproduce: pytest 'tests/test_conformance.py::test_conformance[rnn.cell-oracle]'" in done.stdout
    [record] = report["records"]
    assert record["status"] == "fail" and record["message"].startswith("[rnn.cell]")


def record(check, status, variant, options):
    return {"component": "decoder.layer", "check": check, "eids": ["dec.self"], "status": status,
            "variant": variant, "options": options, "message": ""}


def test_summary_keeps_each_variant_apart():
    """A mode that runs a variant (torch's gelu) must not relabel the modes that run the article's
    equation (post_ln), nor hide a failure of one mode behind another's pass."""
    from properties.summary import table
    rows = table([record("oracle", "pass", "", {"mode": "post_ln"}),
                  record("oracle", "pass", "", {"mode": "seq_first"}),
                  record("oracle", "pass", "ffn.gelu", {"mode": "gelu"}),
                  record("causal", "fail", "ffn.gelu", {"mode": "gelu"})])
    assert rows == [("decoder.layer", "dec.self",
                     "pass [mode=post_ln, seq_first]; variant ffn.gelu: fail (causal) [mode=gelu]")]
    assert table([record("oracle", "pass", "dec.self.pre_ln", {"mode": "pre_ln"})]) == [
        ("decoder.layer", "dec.self", "variant dec.self.pre_ln: pass")]


def test_every_failure_says_how_to_reproduce_it(tmp_path):
    """Not only a value error: a subject that changes its inputs in place, too."""
    done, report = run_pytest(tmp_path, "--subject", "zoo.lstm_state_in_place", "-k", "lstm.cell-oracle")
    assert done.returncode == 1
    [record] = report["records"]
    assert "modified its input" in record["message"]
    assert "reproduce: pytest 'tests/test_conformance.py::test_conformance[lstm.cell-oracle]' --subject " \
           "zoo.lstm_state_in_place" in record["message"]
