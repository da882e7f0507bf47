"""torch.compile as option sets of subject "torch" (subjects/torch_compiled.py): credit only for a
compiled graph that ran, a bug of the compiled path alone caught by the compiled set alone, and the
summary naming the compiled sets, those run and those left for the thorough profile."""
import pytest
import torch
from hypothesis import settings
from torch import nn

from nlpspec.properties.case import cases
from nlpspec.properties.engine.harness import Run
from nlpspec.properties.runner import execute
from nlpspec.subjects.protocol import Declaration
from nlpspec.subjects import torch_compiled
from nlpspec.subjects.torch_compiled import COMPILED, NOT_COMPILED, NotCompiled, compiled
from nlpspec.subjects.torch_nn import SUBJECT
from nlpspec.subjects.zoo import MUTANTS

from optional import require

FEW = settings(settings.get_profile("ci"), max_examples=5)


def test_a_call_that_ran_eagerly_is_not_credited_as_compiled():
    lstm = nn.LSTM(3, 4, batch_first=True).double()  # dynamo runs nn.LSTM eagerly: no graph
    run = compiled(lambda params: lambda x: lstm(x)[0])({}, **COMPILED)
    with pytest.raises(NotCompiled, match="cannot compile this call whole: dynamo would run part of it eagerly "
                                          r"\(Attempted to wrap RNN, GRU, or LSTM\)"):
        run(x=torch.randn(2, 5, 3, dtype=torch.float64))

    def broken(x):  # dynamo breaks the graph at the branch on a value, and would run it eagerly
        return x + 1 if x.sum() > 0 else x - 1
    with pytest.raises(NotCompiled, match=r"cannot compile this call whole.*\(Data-dependent branching\)"):
        compiled(lambda params: broken)({}, **COMPILED)(x=torch.ones(3))
    nothing = compiled(lambda params: lambda x: {"out": x})({}, **COMPILED)  # traced whole, no graph to compile
    with pytest.raises(NotCompiled, match="ran this call eagerly: dynamo produced no graph"):
        nothing(x=torch.ones(3))


def test_a_call_that_ran_a_compiled_graph_passes_its_values_through():
    require("g++")  # inductor's CPU code is C++
    run = compiled(lambda params: lambda x: torch.tanh(x) * params["a"])({"a": torch.tensor(2.0)}, **COMPILED)
    x = torch.randn(4, 3)
    assert torch.allclose(run(x=x), torch.tanh(x) * 2)


def test_builds_of_new_structures_never_reach_dynamos_recompile_limit(monkeypatch):
    """Each build compiles in a frame of its own: builds that differ in an int dynamo guards on (a
    module's size) do not pile up in one frame past the recompile limit (FailOnRecompileLimitHit)."""
    require("g++")  # inductor's CPU code is C++
    monkeypatch.setattr(torch_compiled, "RECOMPILES", 2)

    class Cut(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width  # a module's int: dynamo guards on it, as on nn.LayerNorm's normalized_shape

        def forward(self, x):
            return torch.tanh(x[..., :self.width])

    def builder(params):
        module = Cut(params["width"])
        return lambda x: module(x)
    for width in (1, 2, 3, 4):
        run = compiled(builder)({"width": width}, **COMPILED)
        assert run(x=torch.ones(2, 5)).shape == (2, width)


def test_every_component_of_torch_offers_the_compiled_set():
    assert "nothing compiled" in SUBJECT.declaration("lstm.layers", COMPILED).note
    for component in SUBJECT.builders:
        assert SUBJECT.options[component]["compiled"] == COMPILED, component
        declared = SUBJECT.declaration(component, COMPILED)
        if component in NOT_COMPILED:
            assert declared.profiles == () and declared.note.startswith("the compiled option set: torch.compile")
        else:
            assert declared.profiles == ("thorough",)


def test_without_a_cpu_compiler_the_compiled_sets_are_declared_for_cuda_alone():
    """A machine without a C++ compiler (README's quick start on a fresh machine) cannot run inductor's
    CPU code: the compiled sets say so and run on CUDA alone, never failing as the subject's bug."""
    from torch._inductor import config
    try:
        with config.patch({"cpp.cxx": ("no-such-c++-compiler",)}):
            torch_compiled.no_cpu_compiler.cache_clear()
            declared = SUBJECT.declaration("layernorm", COMPILED)
        assert declared.devices == ("cuda",) and "needs a C++ compiler" in declared.note, declared
        assert declared.not_run(torch.float64, torch.device("cpu"), "ci", "oracle") == "declared to run on cuda only"
    finally:
        torch_compiled.no_cpu_compiler.cache_clear()


def test_with_a_cpu_compiler_the_compiled_sets_run_anywhere():
    require("g++")
    assert SUBJECT.declaration("layernorm", COMPILED).devices is None


def test_a_fault_in_asking_for_the_compiler_is_not_taken_for_a_missing_one(monkeypatch):
    """Only inductor's InvalidCxxCompiler means "no compiler"; another error (a broken config, a
    changed inductor) is raised, not declared away as the compiled sets' absence."""
    from torch._inductor import cpp_builder

    def broken():
        raise AttributeError("module 'torch._inductor.config' has no attribute 'cpp'")
    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", broken)
    torch_compiled.no_cpu_compiler.cache_clear()
    try:
        with pytest.raises(AttributeError):
            torch_compiled.no_cpu_compiler()
    finally:
        torch_compiled.no_cpu_compiler.cache_clear()


def test_a_profile_declaration_runs_its_sample_checks_everywhere_and_the_rest_in_its_profiles():
    declared = Declaration(profiles=("thorough",), checks=("oracle",))
    f64, cpu = torch.float64, torch.device("cpu")
    assert declared.not_run(f64, cpu, "thorough", "gradient") == ""
    assert declared.not_run(f64, cpu, "ci", "oracle") == ""
    assert declared.not_run(f64, cpu, "ci", "gradient") == "declared to run in the thorough profile only"
    assert declared.not_run(f64, cpu, "", "gradient") == ""  # the API without a profile: everything
    assert Declaration(profiles=()).not_run(f64, cpu, "", "oracle") == "declared to run in no profile"


def run_set(subject, component, option_set, checks):
    found = [case for case in cases(subject) if case.component.name == component and case.check.name in checks
             and case.options.name == option_set]
    assert found
    return [execute(Run(subject, torch.device("cpu"), torch.float64, case.options), case.component, case.check, FEW)
            for case in found]


def test_a_bug_of_the_compiled_path_alone_is_caught_by_the_compiled_set_alone():
    require("g++")  # inductor's CPU code is C++
    mutant = MUTANTS["layernorm_wrong_when_compiled"]
    eager = run_set(mutant.subject, "layernorm", "eager", ("oracle", "gradient", "determinism"))
    assert all(r.status == "pass" for r in eager), [r.message for r in eager if r.status != "pass"]
    [caught] = run_set(mutant.subject, "layernorm", "compiled", ("oracle",))
    assert caught.status == "fail" and caught.failures[0]["kind"] == "value", caught.message


def test_the_correct_compiled_layernorm_passes():
    require("g++")  # inductor's CPU code is C++
    records = run_set(SUBJECT, "layernorm", "compiled", ("oracle", "gradient"))
    assert all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]


def test_the_summary_names_the_compiled_sets_run_and_those_left_for_the_thorough_profile(run_pytest):
    require("g++")  # inductor's CPU code is C++
    done, _ = run_pytest("--subject", "torch", "-k", "layernorm-", "--nlpspec-max-examples", "2")
    text = done.stdout.str()
    assert done.ret == 0, text[-3000:] + done.stderr.str()
    assert "layernorm: ran as: compiled, eager" in text, text
    text = " ".join(text.split())  # the summary's lines wrapped at 120 characters
    assert "not run (declared to run in the thorough profile only)" in text, text
    assert "compiled option set (torch.compile" in text, text
