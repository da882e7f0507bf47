"""A lower precision told from a wrong equation, in every check (properties/engine/tolerance.py,
returned_in): a subject computing in float32 under a float64 run is a precision shortfall wherever it
fails; a wrong equation under a float32 run is never one."""
import pytest
import torch
from hypothesis import Phase, settings

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import Subject
from nlpspec.subjects.reference import BUILDERS
from nlpspec.subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def cast(tree, dtype):
    if isinstance(tree, dict):
        return {k: cast(v, dtype) for k, v in tree.items()}
    if isinstance(tree, list):
        return [cast(v, dtype) for v in tree]
    return tree.to(dtype) if isinstance(tree, torch.Tensor) and tree.is_floating_point() else tree


def in_float32(component):
    """The reference's builder, computing in float32 and handing back the run's dtype (as Keras
    does under a float64 run)."""
    def build(params):
        fn = BUILDERS[component](cast(params, torch.float32))

        def call(**inputs):
            dtype = next(v.dtype for v in inputs.values() if v.is_floating_point())
            out = fn(**cast(inputs, torch.float32))
            return cast(out, dtype) if isinstance(out, dict) else out.to(dtype)
        return call
    return build


COMPONENTS = ["lstm.cell", "gru.layers", "mha", "encoder.layer"]  # a cell, a layer on its cell, attention, LN


@pytest.mark.parametrize("component", COMPONENTS)
def test_float32_inside_a_float64_run_is_a_precision_shortfall_in_every_failing_check(component):
    subject = Subject("float32-inside", {component: in_float32(component), **(
        {"gru.cell": in_float32("gru.cell")} if component == "gru.layers" else {})})
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
