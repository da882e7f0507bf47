"""`attention` declared key padding only (Declaration(lacks=("per_query_mask",))): a library whose only
mask is a key padding mask (B, m) is checked by every check that mask form can run (issue 24)."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import Phase, settings

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import Declaration, Subject

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=30, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def padded_attention(q, k, v, key_padding_mask, ignore_padding=False):
    """A library's attention whose only mask is key padding (B, m), True where a key may be attended."""
    visible = key_padding_mask[:, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=None if ignore_padding else visible)


def adapter(**bug):
    """The suite's mask, (B, 1, m) when the subject lacks per-query masks, as the library's (B, m)."""
    return lambda params: lambda q, k, v, mask: padded_attention(q, k, v, mask[:, 0], **bug)


def subject(declared=True, **bug):
    return Subject("key-padding-sdpa", {"attention": adapter(**bug)}, variants={"attention": "mask.bool_true_attends"},
                   declarations={"attention": Declaration(lacks=("per_query_mask",))} if declared else {})


def run(s):
    return check_subject(s, "cpu", torch.float64, QUICK, components=["attention"])


def test_a_key_padding_only_attention_passes_every_check_that_mask_form_runs():
    records = run(subject())
    ran = {r.check for r in records if r.status == "pass"}
    assert {"oracle", "hidden_keys_ignored", "padding_appended", "fully_masked_row", "permutation"} <= ran, \
        [(r.check, r.status, r.message) for r in records]
    assert all(r.status in ("pass", "skip") for r in records), [r.message for r in records if r.status == "fail"]


def test_without_the_declaration_its_mask_form_fails():
    """Per-query masks are what it cannot take: undeclared, the oracle check shows it."""
    assert any(r.status == "fail" and r.check == "oracle" for r in run(subject(declared=False)))


def test_a_key_padding_only_attention_that_drops_its_padding_is_caught():
    failed = {r.check for r in run(subject(ignore_padding=True)) if r.status == "fail"}
    assert {"oracle", "hidden_keys_ignored", "padding_appended"} <= failed, failed
