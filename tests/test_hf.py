"""Hugging Face transformers as a subject (subjects/hf.py): its BERT layer passes with BERT's own ε
declared and fails without it; its GPT-2 block passes as the variants it implements and fails as the
article's; GPT-2's attention passes as causal self-attention. Runs where `nlpspec[hf]` is installed
(CI installs it)."""
from dataclasses import replace

import pytest
import torch

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import load_subject

from optional import require
from quick import QUICK

require("transformers")  # skipped with what to install, failed under NLPSPEC_REQUIRE_ALL=1
pytestmark = pytest.mark.selftest


def oracle(subject, component, dtype=torch.float64):
    return [r for r in check_subject(subject, "cpu", dtype, QUICK, components=[component], checks=["oracle"])]


@pytest.fixture(scope="module")
def hf():
    return load_subject("hf")


def test_bert_passes_with_its_epsilon_declared(hf):
    records = oracle(hf, "encoder.layer")
    assert len(records) == 4 and all(r.status == "pass" for r in records), [r.message for r in records]
    assert all("layernorm.epsilon = 1e-12" in r.declared for r in records)


def test_bert_fails_as_a_different_function_without_its_epsilon(hf):
    undeclared = replace(hf, declarations={})
    records = [r for r in oracle(undeclared, "encoder.layer") if r.options["masks"] == "library"]
    assert records and all(r.status == "fail" and "value: the subject computes a different function" in r.message
                           for r in records), [r.message for r in records]


def test_gpt2_block_passes_as_its_variants_and_fails_as_the_articles(hf):
    assert all(r.status == "pass" and r.variant == "dec.self.pre_ln, enc.ffn.pre_ln, ffn.gelu_tanh"
               for r in oracle(hf, "decoder_only.layer"))
    exact_gelu = replace(hf, variants={**hf.variants, "decoder_only.layer": ("dec.self.pre_ln", "enc.ffn.pre_ln",
                                                                             "ffn.gelu")})
    assert all(r.status == "fail" for r in oracle(exact_gelu, "decoder_only.layer"))


def test_gpt2_attention_loads_every_bias(hf):
    records = [r for r in check_subject(hf, "cpu", torch.float64, QUICK, components=["mha.causal"],
                                        checks=["oracle", "parameters_read"]) if "qwen2" not in r.option_set]
    assert len(records) == 6 and all(r.status == "pass" for r in records), [r.message for r in records]
    assert {r.option_set for r in records} == {"eager", "sdpa", "sdpa_materialized_mask"}


def qwen2(hf, dtype, window=None, checks=("oracle",)):
    """The records of Qwen2's sliding-window attention (window: declared instead of its own)."""
    subject = hf
    if window is not None:
        declare = hf.declarations["mha.causal"]
        subject = replace(hf, declarations={**hf.declarations, "mha.causal": lambda options: replace(
            declare(options), constants={"mask.window": window})})
    return [r for r in check_subject(subject, "cpu", dtype, QUICK, components=["mha.causal"], checks=list(checks))
            if "qwen2" in r.option_set]


def test_qwen2_sliding_window_passes_with_its_window_declared(hf):
    records = qwen2(hf, torch.float32, checks=("oracle", "parameters_read", "causal"))
    assert len(records) == 6 and all(r.status == "pass" and r.variant == "mask.sliding_window" for r in records), \
        [r.message for r in records]
    assert all("mask.window = 3" in r.declared for r in records)
    sdpa = qwen2(hf, torch.float64)
    assert [r.status for r in sdpa if r.option_set == "qwen2_sliding_sdpa"] == ["pass"], [r.message for r in sdpa]


@pytest.mark.parametrize("window", [2, 4])
def test_qwen2_fails_under_a_window_off_by_one(hf, window):
    records = qwen2(hf, torch.float32, window)
    assert records and all(r.status == "fail" for r in records), [r.message for r in records]


def test_qwen2_eager_in_a_float64_run_is_a_precision_shortfall(hf):
    """Qwen2's eager attention takes its softmax in float32: what its declaration says."""
    records = qwen2(hf, torch.float64)
    assert [r.status for r in records if r.option_set == "qwen2_sliding_eager"] == ["skip"]
    declare = hf.declarations["mha.causal"]
    undeclared = replace(hf, declarations={**hf.declarations, "mha.causal": lambda options: replace(
        declare(options), dtypes=None)})
    records = [r for r in check_subject(undeclared, "cpu", torch.float64, QUICK, components=["mha.causal"],
                                        checks=["oracle"]) if r.option_set == "qwen2_sliding_eager"]
    assert records and all(r.status == "fail" and "precision: the subject computes in float32" in r.message
                           for r in records), [r.message for r in records]


def test_marian_positions_pass_as_pe_concat_and_fail_as_the_articles_layout(hf):
    records = oracle(hf, "pe", torch.float32)
    assert records and all(r.status == "pass" and r.variant == "pe.concat" for r in records)
    interleaved = replace(hf, variants={k: v for k, v in hf.variants.items() if k != "pe"})
    records = oracle(interleaved, "pe", torch.float32)
    assert records and all(r.status == "fail" and "matches the variant pe.concat" in r.message for r in records), \
        [r.message for r in records]


def test_marian_positions_in_a_float64_run_are_a_precision_shortfall(hf):
    """Marian's create_weight computes P in float32 (torch.FloatTensor): what its declaration says."""
    assert all(r.status == "skip" and r.declined for r in oracle(hf, "pe"))
    undeclared = replace(hf, declarations={k: v for k, v in hf.declarations.items() if k != "pe"})
    records = oracle(undeclared, "pe")
    assert records and all(r.status == "fail" and "precision: the subject computes in float32" in r.message
                           for r in records), [r.message for r in records]
