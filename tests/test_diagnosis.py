"""A failure of the oracle check says which named variant the subject computes instead, if one
does (Harness.matching_variant), or that none of them does."""
from dataclasses import replace

import pytest
import torch
from hypothesis import Phase, settings

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import load_subject
from nlpspec.subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def oracle_message(subject, component):
    [record] = [r for r in check_subject(subject, "cpu", torch.float64, QUICK, components=[component],
                                         checks=["oracle"]) if r.status == "fail"][:1] or [None]
    assert record is not None, f"{subject.name} passed {component}'s oracle"
    return record.message


@pytest.mark.parametrize("name, component, words", [
    ("attn_unscaled", "attention", "it matches the variant attn.unscaled on this case: declare it, or fix "
                                   "self.attention"),
    ("pre_ln_declared_post_ln", "encoder.layer", "it matches the variant enc.attn.pre_ln, enc.ffn.pre_ln on this "
                                                 "case: declare it, or fix enc.attn, enc.ffn"),
    ("attn_scaled_by_d_k", "attention", "it matches none of the variants attn.unscaled"),
])
def test_the_variant_a_mutant_computes_is_named(name, component, words):
    assert words in oracle_message(MUTANTS[name].subject, component)


def test_a_variant_declared_but_not_computed_is_named():
    reference = load_subject("reference")
    wrong = replace(reference, variants={"pe": "pe.concat"})
    assert "it matches the spec without pe.concat on this case: declare only the variants it does compute" in \
        oracle_message(wrong, "pe")
