"""ONNX Runtime as a subject (subjects/onnxruntime.py): ONNX's own operators and torch modules exported by
torch.onnx.export pass their oracle checks in float32, each declared with ONNX's conventions; a wrong
declaration fails, naming what it computes instead; in float64 the constants ONNX stores in float32 (the
LayerNormalization ε, the Attention function's scale) are told as precision; ONNX Runtime has no
autograd, and the gradient check says so. Runs where `nlpspec[onnx]` is installed."""
from dataclasses import replace

import pytest
import torch

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import Declaration, load_subject
from optional import require
from quick import quick

require("onnxruntime")  # skipped with what to install, failed under NLPSPEC_REQUIRE_ALL=1
pytestmark = pytest.mark.selftest
QUICK = quick(15)
FEW = quick(3)  # the Transformer layers: one dynamo export per drawn shape


@pytest.fixture(scope="module")
def ort_subject():
    return load_subject("onnxruntime")


def only(subject, component, *sets):
    """The subject with `component`'s option sets cut to those named."""
    return replace(subject, options={**subject.options,
                                     component: {name: subject.options[component][name] for name in sets}})


@pytest.mark.parametrize("component", ["rnn.cell", "lstm.cell", "gru.cell", "rnn.layers", "lstm.layers", "gru.layers",
                                       "layernorm", "attention", "attention.causal", "mha"])
def test_onnxruntime_passes_the_oracle_in_float32(ort_subject, component):
    records = check_subject(ort_subject, "cpu", torch.float32, QUICK, components=[component], checks=["oracle"])
    assert records and all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]
    if component in ("lstm.layers", "gru.layers", "mha"):  # both paths: ONNX's own operator and the exported module
        assert {r.option_set for r in records} >= {"export_torchscript"} | ({"onnx_attention"} if component == "mha"
                                                                            else {"onnx_op"})


@pytest.mark.parametrize("component", ["encoder.layer", "decoder_only.layer"])
def test_onnxruntime_exported_transformer_layers_pass_the_oracle_in_float32(ort_subject, component):
    subject = only(ort_subject, component, "export_dynamo", "export_dynamo_pre_ln")
    records = check_subject(subject, "cpu", torch.float32, FEW, components=[component], checks=["oracle"])
    assert len(records) == 2 and all(r.status == "pass" for r in records), [r.message for r in records]


def test_onnxruntime_gru_with_linear_before_reset_declared_as_the_articles_fails_naming_reset_after(ort_subject):
    wrong = replace(ort_subject, variants={k: v for k, v in ort_subject.variants.items()
                                           if k not in ("gru.cell", "gru.layers")})
    records = check_subject(only(wrong, "gru.layers", "onnx_op", "onnx_op_linear_before_reset"), "cpu", torch.float32,
                            QUICK, components=["gru.cell", "gru.layers"], checks=["oracle"])
    verdicts = {(r.component, r.option_set): r for r in records}
    assert verdicts[("gru.cell", "onnx_op")].status == verdicts[("gru.layers", "onnx_op")].status == "pass"
    for component in ("gru.cell", "gru.layers"):
        failed = verdicts[(component, "onnx_op_linear_before_reset")]
        assert failed.status == "fail" and "it matches the variant gru.reset_after" in failed.message, failed.message


def test_onnxruntime_causal_attention_is_aligned_upper_left(ort_subject):
    """ONNX Runtime's Attention with is_causal=1 hides key j from query i where j > i, also where n < m
    (the lower-right alignment of microsoft/onnxruntime#29020 is not in the installed version): declared
    as the variant mask.causal_lower_right it fails, saying it computes the spec's."""
    wrong = replace(ort_subject, variants={**ort_subject.variants, "attention.causal": "mask.causal_lower_right"})
    [record] = check_subject(wrong, "cpu", torch.float32, QUICK, components=["attention.causal"], checks=["oracle"])
    assert record.status == "fail" and "it matches the spec without mask.causal_lower_right" in record.message


def test_onnxruntime_attention_mask_forms_are_declared(ort_subject):
    """The boolean mask of ONNX's Attention is True where a query may attend: declared as the article's
    additive mask (or nn.MultiheadAttention's True-where-hidden) the boolean path fails."""
    wrong = replace(ort_subject, variants={**ort_subject.variants, "attention": "mask.bool_true_masked"})
    records = check_subject(only(wrong, "attention", "onnx_op"), "cpu", torch.float32, QUICK,
                            components=["attention"], checks=["oracle"])
    assert [r.status for r in records] == ["fail"], [r.message for r in records]


def test_onnxruntime_layernorm_uses_epsilon_rounded_to_float32(ort_subject):
    """ONNX's attributes are float32: epsilon=1e-5 is 9.99999974737875e-06. Declared, the float64 run passes;
    left at the spec's 1e-5, it fails, as precision."""
    [declared, exported] = check_subject(ort_subject, "cpu", torch.float64, QUICK, components=["layernorm"],
                                         checks=["oracle"])
    assert declared.status == exported.status == "pass", [declared.message, exported.message]
    undeclared = replace(ort_subject, declarations={})
    records = check_subject(undeclared, "cpu", torch.float64, QUICK, components=["layernorm"], checks=["oracle"])
    assert all(r.status == "fail" and {f["kind"] for f in r.failures} == {"precision"} for r in records), \
        [r.message for r in records]


@pytest.mark.parametrize("component", ["attention", "attention.causal"])
def test_onnxruntime_attention_in_float64_is_a_precision_shortfall(ort_subject, component):
    """ONNX Runtime has no double kernel for Attention and runs ONNX's function body, which computes
    √scale in float32: declared, a float64 run skips it; undeclared, every check that fails says precision."""
    records = check_subject(ort_subject, "cpu", torch.float64, QUICK, components=[component], checks=["oracle"])
    assert records and {r.status for r in records} == {"skip"}, [r.message for r in records]
    undeclared = replace(ort_subject, declarations={**ort_subject.declarations, component: Declaration()})
    records = check_subject(undeclared, "cpu", torch.float64, QUICK, components=[component], checks=["oracle"])
    failed = [r for r in records if r.status == "fail"]
    assert failed and all(f["kind"] == "precision" for r in failed for f in r.failures), [r.message for r in failed]


def test_onnxruntime_recurrent_kernels_are_declared_without_float64(ort_subject):
    """ONNX Runtime's CPU RNN, LSTM and GRU kernels take no double: a float64 run skips them, saying so."""
    records = check_subject(ort_subject, "cpu", torch.float64, QUICK, components=["lstm.layers", "gru.cell"],
                            checks=["oracle"])
    assert records and all(r.status == "skip" and "float32, float16 only" in r.message for r in records), \
        [(r.status, r.message) for r in records]


def test_onnxruntime_has_no_autograd_and_the_gradient_check_says_so(ort_subject):
    """What ONNX Runtime returns carries no autograd graph: the gradient check is not made, and the record
    says so (it is not a failure, nor a gradient the adapter made up)."""
    records = check_subject(ort_subject, "cpu", torch.float32, FEW, components=["layernorm"], checks=["gradient"])
    assert records and all(r.status != "fail" and "no autograd graph: the gradient check is not made" in r.observations
                           for r in records), [(r.status, r.observations) for r in records]
