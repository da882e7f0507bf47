"""Keras 3 as a subject (subjects/keras3.py): its layers pass in float32, its GRU as the article's or as
the reset-after variant by the knob that switches it, its LayerNormalization with its own ε; in a float64
run (where it computes partly in float32), and left at its default float32 policy, every check that
fails says precision. Runs where `nlpspec[keras]` is installed (CI installs it)."""
import os
from dataclasses import replace

import pytest
import torch

from bad_subjects import in_float32
from nlpspec.properties.runner import check_subject
from nlpspec.subjects import load_subject
from optional import require
from quick import QUICK

os.environ.setdefault("KERAS_BACKEND", "torch")  # as subjects/keras3.py sets it, before keras is imported
require("keras")  # skipped with what to install, failed under NLPSPEC_REQUIRE_ALL=1
pytestmark = pytest.mark.selftest


@pytest.fixture(scope="module")
def keras_subject():
    return load_subject("keras")


def test_keras_gru_is_the_articles_without_reset_after_and_the_variant_with_it(keras_subject):
    records = check_subject(keras_subject, "cpu", torch.float32, QUICK, components=["gru.cell"], checks=["oracle"])
    assert {(r.options["reset_after"], r.variant, r.status) for r in records} == {
        (True, "gru.reset_after", "pass"), (False, "", "pass")}, [r.message for r in records]


def test_keras_layernorm_fails_without_its_epsilon(keras_subject):
    undeclared = replace(keras_subject, declarations={})
    [record] = check_subject(undeclared, "cpu", torch.float32, QUICK, components=["layernorm"], checks=["oracle"])
    assert record.status == "fail" and "value: the subject computes a different function" in record.message


@pytest.mark.parametrize("component", ["lstm.cell", "gru.cell", "mha"])
def test_keras_in_float32_under_a_float64_run_is_a_precision_shortfall_in_every_failing_check(keras_subject,
                                                                                                component):
    # a Keras layer left at its default float32 policy, its outputs handed back in the run's dtype
    subject = replace(keras_subject, builders={**keras_subject.builders,
                                               component: in_float32(keras_subject.builders[component])})
    records = check_subject(subject, "cpu", torch.float64, QUICK, components=[component])
    failed = [r for r in records if r.status == "fail"]
    assert any(r.check == "oracle" for r in failed)
    assert all(f["kind"] == "precision" for r in failed for f in r.failures), [r.message for r in failed]


@pytest.mark.parametrize("component", ["lstm.cell", "gru.cell"])
def test_keras_at_dtype_float64_computes_its_matmuls_in_float32_and_is_told_so(keras_subject, component):
    """Keras' result_type maps float64 to float32 ("aligned with JAX's default"), so ops.matmul of two
    float64 tensors returns float32: its layers built with dtype="float64" compute partly in float32.
    Every check that fails in a float64 run says precision."""
    records = check_subject(keras_subject, "cpu", torch.float64, QUICK, components=[component])
    failed = [r for r in records if r.status == "fail"]
    assert failed and all(f["kind"] == "precision" for r in failed for f in r.failures), [r.message for r in failed]
