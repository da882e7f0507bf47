"""The conformance summary credits only what ran (issue 24): a pre-LN option set credits the pre_ln
variants, never the article's post-LN equation; a failure marks the E-id it names; a builder that
raised marks the component, in one line."""
import re

import pytest
import torch

from nlpspec import Subject, check_subject
from nlpspec.properties.suite import COMPONENTS
from nlpspec.properties.summary import summary
from nlpspec.spec import CATALOGUE
from nlpspec.subjects.torch_transformer import encoder_layer_builder

pytestmark = pytest.mark.selftest
LETTERS = re.compile(r"(?:^\S+: |^\s+)([a-z]) = (.+?): (?:as |plus |nothing)")
CELL = re.compile(r"^(.*?)(?: \(([a-z](?:, [a-z])*)\))?$")


def blocks(lines: list[str]) -> dict[str, list[str]]:
    """The summary's lines per component, from pytest's output."""
    start = next(k for k, line in enumerate(lines) if "nlpspec conformance:" in line) + 1
    found, component = {}, None
    for line in lines[start:]:
        if line.startswith(("=", "declared by", "observed", "not offered", "not run")):
            break
        if not line.startswith(" "):
            component = line.split(":")[0]
            found[component] = []
        found[component].append(line)
    return found


def credited(block: list[str], sets: set[str]) -> set[tuple[str, str, str]]:
    """(E-id row, option set, verdict) for every verdict of a component's rows; `sets` the option sets
    the component ran, which a row without letters credits."""
    letters = {m.group(1): set(m.group(2).split(", ")) for line in block if (m := LETTERS.match(line))}
    pairs = set()
    for line in block:
        row = re.match(r"^  (\S+(?: \(component\))?) {2,}(\S.*)$", line)
        if not row or row.group(1) == "outputs":
            continue
        for part in row.group(2).split("; "):
            verdict, named = CELL.match(part).groups()
            for letter in named.split(", ") if named else [None]:
                for option_set in letters[letter] if letter else sets:
                    pairs.add((row.group(1), option_set, verdict.split(" (")[0]))
    return pairs


def ran(record: dict) -> set[str]:
    """The E-ids a record's run ran: those it names that no variant it declared stands for (the
    rule of engine.component.eids_for, read from the spec's catalogue)."""
    component = COMPONENTS[record["component"]]
    replaced = {e for v in filter(None, record["variant"].split(", "))
                for e in component.replaces.get(v, (CATALOGUE[v].variant_of,))}
    return set(record["eids"]) - replaced if record["status"] != "skip" else set()


def test_torch_summary_credits_each_eid_only_to_the_option_sets_that_ran_it(run_pytest):
    """torch's pre_ln and pre_ln_final_norm sets ran enc.attn.pre_ln and dec.cross.pre_ln: the summary
    credited them with the post-LN enc.attn and dec.cross too (padding_positions, memory_permutation)."""
    done, report = run_pytest("--subject", "torch", "--nlpspec-max-examples", "3", "-k",
                              "(encoder or decoder) and (padding_positions or memory_permutation or causal "
                              "or residual_sum) and not transformer")
    assert done.ret == 0, done.stdout.str()[-3000:]
    records = report["records"]
    shown = {(r["component"], r["option_set"], eid) for r in records for eid in ran(r)}
    printed = set()
    for component, block in blocks(done.outlines).items():
        sets = {r["option_set"] for r in records if r["component"] == component and r["status"] != "skip"}
        for eid, option_set, verdict in credited(block, sets):
            assert verdict == "pass", (component, eid, option_set, verdict)
            printed.add((component, option_set, eid))
    assert printed - shown == set(), "credited what did not run"
    assert shown - printed == set(), "ran but not credited"
    assert {s for c, s, e in shown if e == "enc.attn.pre_ln" and c == "encoder"} == {"pre_ln", "pre_ln_final_norm"}
    assert {s for c, s, e in shown if e == "dec.cross.pre_ln" and c == "decoder"} == {"pre_ln", "pre_ln_final_norm"}


def test_a_failure_marks_the_eid_it_names_not_every_row(run_pytest):
    """zoo.lstm_gates_swapped fails the oracle at [lstm.forget] f[0, 0]: lstm.forget fails, the other
    gates are not judged (the check stopped there), none of them fails."""
    done, report = run_pytest("--subject", "zoo.lstm_gates_swapped", "--nlpspec-max-examples", "5",
                              "-k", "lstm.cell-oracle")
    assert done.ret == 1
    [record] = report["records"]
    assert record["message"].startswith("[lstm.forget]"), record["message"]
    assert blocks(done.outlines)["lstm.cell"] == [
        "lstm.cell", "  lstm.forget     fail (oracle)", "  lstm.input      not judged (oracle)",
        "  lstm.candidate  not judged (oracle)", "  lstm.cell       not judged (oracle)",
        "  lstm.output     not judged (oracle)", "  lstm.hidden     not judged (oracle)"]


def test_a_structured_eid_is_read_before_the_message():
    """A failure record's `eid` field, where the runner gives one, names the row; a failure that
    names no E-id of the record (a raise, a form error), or a case that died (status error), marks
    the component."""
    base = {"component": "gru.cell", "check": "oracle", "eids": ["gru.reset", "gru.hidden"], "status": "fail",
            "variant": "", "options": {}, "message": ""}
    assert summary([{**base, "failures": [{"message": "output 'r' disagrees", "eid": "gru.reset"}]}]) == [
        "gru.cell", "  gru.reset   fail (oracle)", "  gru.hidden  not judged (oracle)"]
    assert summary([{**base, "failures": [{"message": "[gru.cell] subject 'S': the builder raised KeyError"}]}]) \
        == ["gru.cell", "  gru.cell  fail (oracle)"]
    crashed = {**base, "status": "error", "message": "the worker running it died (signal 11)", "failures": []}
    assert summary([crashed, {**base, "check": "bounds", "status": "pass", "failures": []}]) == [
        "gru.cell", "  gru.reset   pass", "  gru.hidden  pass", "  gru.cell    error (oracle)"]
    assert summary([{**crashed, "component": "", "eids": []}]) == []  # outside any case: the plugin's own lines


def test_a_builder_that_raised_marks_the_component_in_one_line(run_pytest):
    done, _ = run_pytest("--subject", "planted.builder_raises:SUBJECT", "--nlpspec-max-examples", "3",
                         "-k", "lstm.cell-oracle or lstm.cell-bounds or lstm.cell-highway")
    assert done.ret == 1
    assert blocks(done.outlines)["lstm.cell"] == ["lstm.cell", "  lstm.cell (component)  fail (bounds, highway, oracle)"]


def nan_pre_ln_layer(params):
    layer = encoder_layer_builder(params, norm_first=True)
    return lambda x, key_padding_mask: layer(x, key_padding_mask) * float("nan")


def test_a_pre_ln_layers_failure_is_headed_by_the_pre_ln_variant():
    """torch's pre-LN encoder layer with a NaN output: the failure names enc.ffn.pre_ln, the equation
    that ran, not the post-LN enc.ffn."""
    subject = Subject("nan_pre_ln", {"encoder.layer": nan_pre_ln_layer},
                      variants={"encoder.layer": ("enc.attn.pre_ln", "enc.ffn.pre_ln", "mask.bool_true_masked")})
    [record] = check_subject(subject, "cpu", torch.float64, components=["encoder.layer"], checks=["oracle"],
                             profile="dev")
    assert record.status == "fail" and record.message.startswith("[enc.ffn.pre_ln]"), record.message
    rows = {line.split()[0]: line.split()[1] for line in summary([record.as_dict()])  # rows, not wrapped lines
            if line.startswith("  ") and not line.startswith("   ") and len(line.split()) > 1}
    assert "enc.ffn" not in rows and "enc.attn" not in rows, rows
    # the E-id it names, or the layer as a whole where the record says out was all it returned
    assert "fail" in (rows.get("enc.ffn.pre_ln"), rows.get("encoder.layer")), rows
