"""A lower precision told from a wrong equation, in every check (properties/engine/lower_dtype.py,
returned_in): a subject computing in float32 under a float64 run is a precision shortfall wherever it
fails; a wrong equation under a float32 run is never one."""
import pytest
import torch
from hypothesis import Phase, settings

from bad_subjects import in_float32
from nlpspec.properties.runner import check_subject
from nlpspec.subjects import Subject
from nlpspec.subjects.reference import BUILDERS
from nlpspec.subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


COMPONENTS = ["lstm.cell", "gru.layers", "mha", "encoder.layer"]  # a cell, a layer on its cell, attention, LN


@pytest.mark.parametrize("component", COMPONENTS)
def test_float32_inside_a_float64_run_is_a_precision_shortfall_in_every_failing_check(component):
    subject = Subject("float32-inside", {name: in_float32(BUILDERS[name]) for name in (
        component, *(["gru.cell"] if component == "gru.layers" else []))})
    records = [r for r in check_subject(subject, "cpu", torch.float64, QUICK, components=[component])
               if r.status != "skip"]
    failed = [r for r in records if r.status == "fail"]
    assert any(r.check == "oracle" for r in failed), [r.check for r in records]
    kinds = {(r.check, f["kind"]) for r in failed for f in r.failures}
    assert all(kind == "precision" for _, kind in kinds), [r.message for r in failed]


@pytest.mark.parametrize("name", ["gru_update_flipped", "lstm_gates_swapped", "mha_scaled_by_d_model",
                                  "dec_causal_one_ahead", "ln_unbiased_variance"])
def test_a_wrong_equation_in_a_float32_run_is_never_called_precision(name):
    mutant = MUTANTS[name]
    records = check_subject(mutant.subject, "cpu", torch.float32, QUICK, components=list(mutant.components))
    failed = [r for r in records if r.status == "fail"]
    assert failed, f"{name} passed in float32"
    assert all(f["kind"] != "precision" for r in failed for f in r.failures), \
        [r.message for r in failed if any(f["kind"] == "precision" for f in r.failures)]
