"""A subject's declarations (subjects/protocol.py, Declaration): its constants reach the oracle, what it
lacks is not drawn and the checks that need it are not run (and say so), absent parameters are drawn
as their identity (0 added, 1 multiplying) and their gradients are not judged, and a declaration the
suite does not know, or one that makes no sense, is a usage error."""
import math
from dataclasses import replace

import pytest
import torch

from nlpspec.properties.engine.absent import identity
from nlpspec.properties.runner import check_subject
from nlpspec.properties.summary import declarations
from nlpspec.reference import transformer as ref
from nlpspec.subjects import Declaration, Subject, load_subject
from nlpspec.subjects.protocol import SubjectLoadError
from nlpspec.subjects.reference import BUILDERS
from quick import QUICK

pytestmark = pytest.mark.selftest


def layer_norm_with(eps):
    def build(params):
        def fn(x):
            mean = x.mean(-1, keepdim=True)
            var = ((x - mean) ** 2).mean(-1, keepdim=True)
            return params["gamma"] * (x - mean) / torch.sqrt(var + eps) + params["beta"]
        return fn
    return build


def run(subject, components, checks=None, dtype=torch.float64):
    return [r for r in check_subject(subject, "cpu", dtype, QUICK, components=components, checks=checks)
            if "does not offer" not in r.message]


def test_a_declared_epsilon_is_the_one_the_oracle_uses():
    bert_eps = Subject("eps-1e-12", {"layernorm": layer_norm_with(1e-12)},
                       declarations={"layernorm": Declaration(constants={"layernorm.epsilon": 1e-12})})
    records = run(bert_eps, ["layernorm"])
    assert records and all(r.status == "pass" for r in records), [r.message for r in records]
    assert all("layernorm.epsilon = 1e-12" in r.declared for r in records)


def test_a_subject_whose_epsilon_is_not_the_one_it_declares_fails():
    undeclared = Subject("eps-1e-12", {"layernorm": layer_norm_with(1e-12)})
    wrong = replace(undeclared, declarations={"layernorm": Declaration(constants={"layernorm.epsilon": 1e-3})})
    for subject in (undeclared, wrong):
        [oracle] = run(subject, ["layernorm"], ["oracle"])
        assert oracle.status == "fail" and oracle.message.startswith("[layernorm]"), oracle.message


def test_the_default_epsilon_is_the_spec_s():
    [oracle] = run(Subject("ref", {"layernorm": layer_norm_with(ref.EPSILON)}), ["layernorm"], ["oracle"])
    assert oracle.status == "pass"


def test_a_declared_pe_base_is_used():
    def positions(base):
        def build(params):
            def fn(x):
                n, d = x.shape[-2:]
                i = torch.arange(n, dtype=x.dtype)[:, None]
                pair = (torch.arange(d) // 2).to(x.dtype)
                angle = i / torch.tensor(float(base), dtype=x.dtype) ** (2 * pair / d)
                P = torch.where(torch.arange(d) % 2 == 0, torch.sin(angle), torch.cos(angle))
                return {"out": x + P, "P": P}
            return fn
        return build
    declared = Subject("base-500", {"pe": positions(500)}, declarations={"pe": Declaration(constants={"pe.base": 500})})
    [passed] = run(declared, ["pe"], ["oracle"])
    [failed] = run(replace(declared, declarations={}), ["pe"], ["oracle"])
    assert (passed.status, failed.status) == ("pass", "fail"), (passed.message, failed.message)


SELF_ONLY = Declaration(lacks=("cross_attention", "attn_mask", "key_padding"))


def self_attention_only(params):
    """The reference's MHA that reads only the query (a packed q/k/v projection) and no mask."""
    fn = BUILDERS["mha"](params)
    return lambda query, key, value, attn_mask, key_padding_mask: fn(
        query, query, query, torch.zeros_like(attn_mask), torch.zeros_like(key_padding_mask))


def test_what_a_subject_lacks_is_not_drawn_and_its_checks_are_not_run():
    subject = Subject("self-only", {"mha": self_attention_only, "attention": BUILDERS["attention"]},
                      declarations={"mha": SELF_ONLY})
    records = run(subject, ["mha"])
    ran = {r.check: r for r in records}
    assert all(r.status == "pass" for r in records if not r.declined), [r.message for r in records]
    declined = {r.check for r in records if r.declined}
    assert declined == {"hidden_keys_ignored", "padding_appended", "equal_keys", "fully_masked_row"}
    assert ran["padding_appended"].message == ("declared: mha lacks cross_attention, key_padding: keys and values "
                                               "other than the query not checked (self-attention only); key padding "
                                               "not checked")
    text = " ".join(line.strip() for line in declarations([r.as_dict() for r in records]))
    assert text.startswith("mha: lacks cross_attention: keys and values other than the query not checked "
                           "(self-attention only); lacks attn_mask: attention masks not checked; lacks key_padding: ")
    assert "not run (lacks cross_attention): equal_keys, hidden_keys_ignored" in text
    assert "not run (lacks cross_attention, key_padding): padding_appended" in text
    assert "not run (lacks attn_mask): fully_masked_row" in text


def test_a_self_attention_only_subject_fails_undeclared():
    subject = Subject("self-only", {"mha": self_attention_only})
    [oracle] = run(subject, ["mha"], ["oracle"])
    assert oracle.status == "fail"


def test_a_declared_dtype_skips_other_runs_with_the_reason():
    subject = Subject("f32", {"layernorm": layer_norm_with(ref.EPSILON)},
                      declarations={"layernorm": Declaration(dtypes=(torch.float32,))})
    records = run(subject, ["layernorm"])
    assert records and all(r.status == "skip" and r.declined == "declared to run in float32 only" for r in records)
    assert records[0].message == "declared: layernorm declared to run in float32 only"
    assert all(r.status == "pass" for r in run(subject, ["layernorm"], dtype=torch.float32))


def test_absent_parameters_are_drawn_as_zero():
    seen = []

    def without_beta(params):
        seen.append(params["beta"].clone())
        return layer_norm_with(ref.EPSILON)({**params, "beta": torch.zeros_like(params["beta"])})
    subject = Subject("no-beta", {"layernorm": without_beta})
    [undeclared] = run(subject, ["layernorm"], ["oracle"])
    assert undeclared.status == "fail"
    seen.clear()
    declared = replace(subject, declarations={"layernorm": Declaration(absent=("beta",))})
    [record] = run(declared, ["layernorm"], ["oracle"])
    assert record.status == "pass" and seen and all((b == 0).all() for b in seen)
    assert "no beta (drawn as 0)" in record.declared


@pytest.mark.parametrize("declaration, message", [
    (Declaration(lacks=("cross_attention",)), "unknown capability 'cross_attention'"),
    (Declaration(constants={"layernorm.eps": 1e-12}), "unknown constant 'layernorm.eps' (did you mean "
                                                      "'layernorm.epsilon'?)"),
    (Declaration(constants={"layernorm.epsilon": "1e-12"}), "constant 'layernorm.epsilon' is '1e-12'; give a number"),
    (Declaration(dtypes=("float32",)), "give torch dtypes"),
    (Declaration(absent=("b_Q",)), "unknown absent parameter 'b_Q'; known: gamma, beta"),
    # nonsense: vacuous checks, a crash later, or a field read wrongly
    (Declaration(dtypes=()), "dtypes=() leaves it no run, so nothing of it would be checked"),
    (Declaration(devices=()), "devices=() leaves it no run, so nothing of it would be checked"),
    (Declaration(dtypes=(torch.int64,)), "dtypes lists torch.int64, which the suite never runs in"),
    (Declaration(devices=("gpu",)), "devices lists 'gpu'; give device types"),
    (Declaration(dtypes=torch.float32), "dtypes is torch.float32; give a tuple, e.g. dtypes=(torch.float32,)"),
    (Declaration(absent="gamma"), "absent is 'gamma'; give a tuple, e.g. absent=('gamma',)"),
    (Declaration(lacks="mask"), "lacks is 'mask'; give a tuple"),
    (Declaration(constants=[("layernorm.epsilon", 1e-5)]), "constants is [('layernorm.epsilon', 1e-05)]; give a dict"),
    (Declaration(constants={"layernorm.epsilon": math.nan}), "'layernorm.epsilon' is nan; give a finite number"),
    (Declaration(constants={"layernorm.epsilon": math.inf}), "'layernorm.epsilon' is inf; give a finite number"),
    (Declaration(constants={"layernorm.epsilon": -1e-5}), "is -1e-05; give a finite number 0 or more"),
    (Declaration(note=None), "note is None; give a str"),
])
def test_a_declaration_the_suite_does_not_know_is_a_usage_error(declaration, message):
    subject = Subject("bad", {"layernorm": layer_norm_with(ref.EPSILON)}, declarations={"layernorm": declaration})
    with pytest.raises(SubjectLoadError, match="subject 'bad', component layernorm: ") as caught:
        check_subject(subject, "cpu", torch.float64, QUICK)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("subject, message", [
    (Subject("bad", layer_norm_with(ref.EPSILON)), "subject 'bad': builders is a function; give a dict"),
    (Subject("bad", {"layernorm": None}), "subject 'bad', component layernorm: its builder is a NoneType"),
    (Subject("bad", {"mha": BUILDERS["mha"]}, declarations={"mha": Declaration(absent=("W_O",))}),
     "component mha: absent parameter 'W_O' is neither added nor an elementwise factor in the spec"),
    (Subject("bad", {"pe": BUILDERS["pe"]}, declarations={"pe": Declaration(constants={"pe.base": 0})}),
     "component pe: constant 'pe.base' is 0; give a finite number more than 0"),
    (Subject("bad", {"mha": BUILDERS["mha"]}, declarations={"mha": Declaration(lacks=("attn_mask",))},
             expected_failures={"mha-fully_masked_row": "a fully masked row is zeros"}),
     "component mha: declares mha-fully_masked_row an expected failure, but also that it lacks attn_mask, which "
     "that check needs: it never runs"),
    (Subject("bad", {"gru.cell": BUILDERS["gru.cell"]}, declarations={"gru.cell": Declaration(absent=("b_hn",))}),
     "component gru.cell: unknown absent parameter 'b_hn'"),  # the article's GRU has none: gru.reset_after has
    # each crashed with a TypeError or an OverflowError
    (Subject("bad", {"mha": BUILDERS["mha"]}, variants={"mha": 3}), "component mha: its variants are 3; give an E-id"),
    (Subject("bad", {"mha": BUILDERS["mha"]}, options={"mha": [True]}), "component mha: its options are [True]; give"),
    (Subject("bad", {"layernorm": BUILDERS["layernorm"]}, declarations={"layernorm": Declaration(lacks=(3,))}),
     "component layernorm: unknown capability 3; known: none"),
    (Subject("bad", {"layernorm": BUILDERS["layernorm"]}, expected_failures={3: "why"}),
     "subject 'bad': unknown expected-failure id 3; known: layernorm-batch_independence"),
    (Subject("bad", {"layernorm": BUILDERS["layernorm"]},
             declarations={"layernorm": Declaration(constants={"layernorm.epsilon": 10**400})}), "; give a finite number"),
])
def test_a_subject_that_makes_no_sense_is_a_usage_error(subject, message):
    with pytest.raises(SubjectLoadError) as caught:
        check_subject(subject, "cpu", torch.float64, QUICK)
    assert message in str(caught.value) and "\n" not in str(caught.value)


NONSENSE = """
import math
from nlpspec.subjects import Declaration, Subject
from nlpspec.subjects.reference import BUILDERS
NO_DTYPES = Subject("no-dtypes", BUILDERS, declarations={"layernorm": Declaration(dtypes=())})
NAN_EPSILON = Subject("nan-eps", BUILDERS,
                      declarations={"layernorm": Declaration(constants={"layernorm.epsilon": math.nan})})
BUILDER_FUNCTION = Subject("function", BUILDERS["layernorm"])
"""


@pytest.mark.parametrize("name, message", [
    ("NO_DTYPES", "subject 'no-dtypes', component layernorm: dtypes=() leaves it no run"),
    ("NAN_EPSILON", "subject 'nan-eps', component layernorm: constant 'layernorm.epsilon' is nan"),
    ("BUILDER_FUNCTION", "subject 'function': builders is a function; give a dict"),
])
def test_a_nonsensical_declaration_stops_pytest_in_one_line(run_pytest, pytester, name, message):
    pytester.makepyfile(nonsense=NONSENSE)
    pytester.syspathinsert()
    done, written = run_pytest("-q", "--subject", f"nonsense:{name}")
    errors = [line for line in done.stderr.str().splitlines() if line.strip()]
    assert done.ret == 4 and len(errors) == 1 and errors[0].startswith(f"ERROR: {message}"), done.stderr.str()
    assert message in written["error"]


def test_an_absent_parameter_is_drawn_as_its_identity_in_the_spec():
    """0 where the spec adds it, 1 where it multiplies elementwise, none for a weight matrix."""
    assert [identity(name) for name in ("beta", "b_hn", "b_Q", "gamma", "gamma_2", "W_Q", "src_embedding")] == \
        [0, 0, 0, 1, 1, None, None]


def layer_norm_without_gamma(params):
    """A LayerNorm with no scale (elementwise_affine with γ fixed at 1): it never reads gamma."""
    return layer_norm_with(ref.EPSILON)({**params, "gamma": torch.ones_like(params["gamma"])})


def layer_norm_not_dividing(params):
    """γ (x - μ) + β: never divides by σ."""
    return lambda x: params["gamma"] * (x - x.mean(-1, keepdim=True)) + params["beta"]


def test_a_layernorm_without_a_scale_passes_and_one_that_never_divides_fails_declared_absent_gamma():
    no_gamma = Declaration(absent=("gamma",))
    subject = Subject("no-gamma", {"layernorm": layer_norm_without_gamma}, declarations={"layernorm": no_gamma})
    records = run(subject, ["layernorm"])
    assert records and all(r.status == "pass" for r in records), [r.message for r in records]
    assert "no gamma (drawn as 1)" in records[0].declared
    wrong = Subject("no-division", {"layernorm": layer_norm_not_dividing}, declarations={"layernorm": no_gamma})
    [oracle] = run(wrong, ["layernorm"], ["oracle"])
    assert oracle.status == "fail" and "computes a different function" in oracle.message, oracle.message


ATTENTION_BIASES = ("b_Q", "b_K", "b_V", "b_O")


def without_attention_biases(params):
    """params with every attention bias (at any depth) a fresh 0: a layer that has none."""
    if isinstance(params, dict):
        return {k: torch.zeros_like(v) if k in ATTENTION_BIASES else without_attention_biases(v)
                for k, v in params.items()}
    return [without_attention_biases(v) for v in params] if isinstance(params, list) else params


def test_an_absent_parameter_s_gradient_is_not_judged():
    """The reference's decoder layer without attention biases (x-transformers 1.17.2 has no b_Q):
    its gradient with respect to the b_Q it is given is 0, the spec's is not."""
    subject = Subject("no-attention-biases", {"decoder.layer": lambda p: BUILDERS["decoder.layer"](
        without_attention_biases(p))}, declarations={"decoder.layer": Declaration(absent=ATTENTION_BIASES)})
    records = run(subject, ["decoder.layer"], ["gradient", "oracle", "parameters_read"])
    assert len(records) == 3 and all(r.status == "pass" for r in records), [r.message for r in records]


def test_torch_and_reference_declare_nothing_they_do_not_need():
    for name in ("torch", "reference"):  # torch's compiled set declares only the profiles it runs in
        assert all(not r.declared or r.option_set == "compiled" and any(line.startswith("because: the compiled")
                                                                         for line in r.declared)
                   for r in check_subject(load_subject(name), "cpu", torch.float64, QUICK, components=["layernorm"],
                                          checks=["oracle"]))


def layer_norm_by_eps(params, eps=ref.EPSILON, fused=False):
    return layer_norm_with(eps)(params)


NAMED_SETS = {"bert": {"eps": 1e-12, "fused": True}, "torch": {"eps": 1e-5, "fused": False}}


def test_named_option_sets_run_as_given_and_are_named():
    """Knobs that go together (an ε and a fused path) run only together, each set under its name."""
    from nlpspec.properties.case import cases
    subject = Subject("sets", {"layernorm": layer_norm_by_eps}, options={"layernorm": NAMED_SETS},
                      declarations={"layernorm": lambda o: Declaration(constants={"layernorm.epsilon": o["eps"]})})
    records = run(subject, ["layernorm"], ["oracle"])
    assert sorted((r.option_set, r.options["eps"], r.status) for r in records) == [
        ("bert", 1e-12, "pass"), ("torch", 1e-5, "pass")]
    assert {c.id for c in cases(subject) if c.component.name == "layernorm" and c.check.name == "oracle"} == {
        "layernorm-oracle-bert-layernorm", "layernorm-oracle-torch-layernorm"}
    crossed = replace(subject, options={"layernorm": {"eps": [1e-12, 1e-5], "fused": [True, False]}})
    assert len(run(crossed, ["layernorm"], ["oracle"])) == 4


def test_what_one_option_set_declares_is_said_of_that_set_alone():
    """A dtype declared by one option set (a fused path that computes in float32) is not the
    component's: the summary says which set declares it and what the others declare."""
    fused_in_float32 = lambda o: Declaration(dtypes=(torch.float32,)) if o["fused"] else \
        Declaration(constants={"layernorm.epsilon": o["eps"]})
    subject = Subject("sets", {"layernorm": layer_norm_by_eps}, options={"layernorm": NAMED_SETS},
                      declarations={"layernorm": fused_in_float32})
    text = declarations([r.as_dict() for r in run(subject, ["layernorm"], ["oracle"])])
    assert text == ["layernorm [bert]: runs in float32 on any device; not run (declared to run in float32 only): "
                    "oracle", "layernorm [torch]: layernorm.epsilon = 1e-05"], text
    agreeing = replace(subject, declarations={"layernorm": Declaration(dtypes=(torch.float32,))})
    assert declarations([r.as_dict() for r in run(agreeing, ["layernorm"], ["oracle"])]) == [
        "layernorm: runs in float32 on any device; not run (declared to run in float32 only): oracle"]


@pytest.mark.parametrize("options, message", [
    ({"bert": {"epsilon": 1e-12}}, "unknown option 'epsilon'"),
    ({"bert": {"eps": 1e-12}, "fused": [True]}, "option 'bert' lists no values"),
])
def test_an_option_set_the_builder_does_not_take_is_a_usage_error(options, message):
    subject = Subject("bad", {"layernorm": layer_norm_by_eps}, options={"layernorm": options})
    with pytest.raises(SubjectLoadError, match=message):
        check_subject(subject, "cpu", torch.float64, QUICK)


def test_an_absent_parameter_another_check_redraws_is_still_its_identity():
    """head_locality redraws one head's weights and biases, not b_O: an mha without b_O passes it (it
    failed with "declares absent parameter(s) 'b_O', which mha does not have")."""
    subject = Subject("no-b_O", {"mha": lambda p: BUILDERS["mha"]({**p, "b_O": torch.zeros_like(p["b_O"])})},
                      declarations={"mha": Declaration(absent=("b_O",))})
    [record] = run(subject, ["mha"], ["head_locality"])
    assert record.status == "pass", record.message
