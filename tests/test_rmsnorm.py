"""RMSNorm (rmsnorm), an extension of the article's spec (Zhang & Sennrich 2019): the spec's equation is
the paper's formula, written directly in NumPy; the suite catches the zoo's RMSNorm mutants by the check
that should catch each; the reference, torch's nn.RMSNorm and Hugging Face's LlamaRMSNorm pass, and
LlamaRMSNorm's float32 arithmetic in a float64 run is reported as a precision shortfall."""
from dataclasses import replace

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import Phase, settings
from torch import nn

from nlpspec.properties.runner import check_subject, first_failure
from nlpspec.spec import CATALOGUE, compile_equation
from nlpspec.spec.constants import DEFAULTS, in_force
from nlpspec.spec.transformer import RMSNorm
from nlpspec.subjects import Subject, load_subject
from nlpspec.subjects.zoo import MUTANTS

from optional import require

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def paper(x, gamma, eps):
    """Zhang & Sennrich's RMSNorm, row by row: ā_i = a_i / RMS(a) g_i, RMS(a) = √(1/n Σ a_i² + ε)."""
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps) * gamma


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 5), (4, 1, 7)])
def test_the_spec_s_equation_is_the_paper_s_formula(shape):
    rng = np.random.default_rng(sum(shape))
    x, gamma = rng.standard_normal(shape) * 3, rng.standard_normal((1, shape[-1]))
    fn = compile_equation(CATALOGUE["rmsnorm"])
    assert float(DEFAULTS["rmsnorm.epsilon"]) == 1e-6
    np.testing.assert_allclose(fn(X=x, gamma=gamma), paper(x, gamma, 1e-6), rtol=1e-14, atol=0)
    with in_force({"rmsnorm.epsilon": 0.25}):
        np.testing.assert_allclose(fn(X=x, gamma=gamma), paper(x, gamma, 0.25), rtol=1e-14, atol=0)
    assert fn(X=x.astype(np.float32), gamma=gamma.astype(np.float32)).dtype == np.float32


def test_the_printed_definition_is_its_entry():
    """The docs' "where" lines name r_i (the mean square) and ε; put back, they give `_entry` itself."""
    first, *parts = RMSNorm.definition()
    expr = first.rhs
    for part in parts:
        expr = expr.subs(part.lhs, part.rhs)
    n, d = sp.symbols("n d_model", integer=True, positive=True)
    i, j = sp.symbols("i j", integer=True)
    norm = RMSNorm(sp.MatrixSymbol("a", n, d), sp.MatrixSymbol("gamma", 1, d))
    concrete = {n: 2, d: 3}
    assert sp.simplify(expr.subs(concrete).doit() - norm._entry(i, j).subs(concrete).doit()) == 0


def test_the_entry_says_it_is_an_extension_citing_the_paper():
    entry = CATALOGUE["rmsnorm"]
    assert "not in the article" in entry.statement and "Zhang & Sennrich 2019" in entry.statement


# the check that catches each of the zoo's RMSNorm mutants (tests/test_zoo.py hunts them with every check too)
CAUGHT_BY = {"rms_epsilon_outside_root": "oracle", "rms_l2_norm": "oracle", "rmsnorm_backward_rms_constant": "gradient"}


def test_the_zoo_has_these_rmsnorm_mutants():
    assert {name for name, m in MUTANTS.items() if "rmsnorm" in m.components} == set(CAUGHT_BY)


@pytest.mark.parametrize("name, check", sorted(CAUGHT_BY.items()))
def test_each_rmsnorm_mutant_is_caught(name, check):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"), checks=[check])
    assert record is not None and record.check == check, f"{check} does not catch {name} ({mutant.bug})"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("name", ["reference", "torch"])
def test_the_reference_and_torch_pass(name, dtype):
    records = [r for r in check_subject(load_subject(name), "cpu", dtype, QUICK, components=["rmsnorm"])
               if r.status != "skip"]  # torch's compiled set: the thorough profile's
    assert records and all(r.status == "pass" for r in records), [(r.check, r.message) for r in records]


def test_nn_rmsnorm_at_its_default_eps_is_another_function():
    """nn.RMSNorm's eps=None is torch.finfo(dtype).eps, not the spec's ε: why the adapter passes and declares one."""
    def default_eps(params):
        module = nn.RMSNorm(params["gamma"].shape[0], dtype=params["gamma"].dtype)
        module.weight.requires_grad_(False).copy_(params["gamma"])
        return lambda x: module(x)
    records = check_subject(Subject("default_eps", {"rmsnorm": default_eps}), "cpu", torch.float64, QUICK,
                            components=["rmsnorm"], checks=["oracle"])
    assert records and all(r.status == "fail" for r in records)


@pytest.fixture(scope="module")
def hf():
    require("transformers")
    return load_subject("hf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_llama_rmsnorm_passes_in_the_dtypes_it_declares(hf, dtype):
    records = check_subject(hf, "cpu", dtype, QUICK, components=["rmsnorm"])
    assert records and all(r.status == "pass" for r in records), [(r.check, r.message) for r in records]


def test_llama_rmsnorm_in_a_float64_run_is_a_precision_shortfall(hf):
    """LlamaRMSNorm normalises in float32 by design (hidden_states.to(torch.float32)): what it declares."""
    assert all(r.status == "skip" and r.declined for r in check_subject(hf, "cpu", torch.float64, QUICK,
                                                                        components=["rmsnorm"], checks=["oracle"]))
    undeclared = replace(hf, declarations={k: v for k, v in hf.declarations.items() if k != "rmsnorm"})
    records = check_subject(undeclared, "cpu", torch.float64, QUICK, components=["rmsnorm"], checks=["oracle"])
    assert records and all(r.status == "fail" and "precision: the subject computes in float32" in r.message
                           for r in records), [r.message for r in records]
