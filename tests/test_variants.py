"""torch's GRU is the reset-after variant: the suite passes it as that and fails it as the article's."""
from dataclasses import replace

import pytest
import torch
from hypothesis import Phase, settings

from properties.runner import check_subject
from subjects import load_subject

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def gru_oracle(subject):
    records = check_subject(subject, "cpu", torch.float64, QUICK, components=["gru.cell"])
    return next(r for r in records if r.check == "oracle")


def test_torch_gru_passes_as_the_reset_after_variant():
    record = gru_oracle(load_subject("torch"))
    assert (record.status, record.variant) == ("pass", "gru.reset_after")
    assert "gru.reset_after" in record.eids and "gru.candidate" not in record.eids


def test_torch_gru_fails_as_the_articles_gru():
    torch_subject = load_subject("torch")
    undeclared = replace(torch_subject, variants={})
    record = gru_oracle(undeclared)
    assert record.status == "fail"
    assert "value: the subject computes a different function" in record.message


def test_readme_worked_example_passes_every_check():
    records = check_subject(load_subject("examples.my_lstm:SUBJECT"), "cpu", torch.float64, QUICK)
    assert {r.component for r in records if r.status != "skip"} == {"lstm.cell"}
    assert all(r.status == "pass" for r in records if r.status != "skip"), [r.message for r in records]
