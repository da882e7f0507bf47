"""A subject's declarations (subjects/base.py, Declaration): its constants reach the oracle, what it
lacks is not drawn and the checks that need it are not run (and say so), absent parameters are drawn
as 0, and a declaration the suite does not know is a usage error."""
from dataclasses import replace
import pytest
import torch
from hypothesis import Phase, settings

from nlpspec.properties.runner import check_subject
from nlpspec.properties.summary import declarations
from nlpspec.reference import transformer as ref
from nlpspec.subjects import Declaration, Subject, load_subject
from nlpspec.subjects.reference import BUILDERS
from nlpspec.subjects.registry import SubjectLoadError

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


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
])
def test_a_declaration_the_suite_does_not_know_is_a_usage_error(declaration, message):
    subject = Subject("bad", {"layernorm": layer_norm_with(ref.EPSILON)}, declarations={"layernorm": declaration})
    with pytest.raises(SubjectLoadError, match="subject 'bad', component layernorm: ") as caught:
        check_subject(subject, "cpu", torch.float64, QUICK)
    assert message in str(caught.value)


def test_an_absent_parameter_the_component_does_not_have_is_reported():
    subject = Subject("bad", {"layernorm": layer_norm_with(ref.EPSILON)},
                      declarations={"layernorm": Declaration(absent=("b_Q",))})
    [record] = run(subject, ["layernorm"], ["oracle"])
    assert record.status == "fail" and "declares absent parameter(s) 'b_Q', which layernorm does not have" \
        in record.message


def test_torch_and_reference_declare_nothing_they_do_not_need():
    for name in ("torch", "reference"):
        assert all(not r.declared for r in check_subject(load_subject(name), "cpu", torch.float64, QUICK,
                                                         components=["layernorm"], checks=["oracle"]))


def layer_norm_by_eps(params, eps=ref.EPSILON, fused=False):
    return layer_norm_with(eps)(params)


NAMED_SETS = {"bert": {"eps": 1e-12, "fused": True}, "torch": {"eps": 1e-5, "fused": False}}


def test_named_option_sets_run_as_given_and_are_named():
    """Knobs that go together (an ε and a fused path) run only together, each set under its name."""
    from nlpspec.properties.runner import cases
    subject = Subject("sets", {"layernorm": layer_norm_by_eps}, options={"layernorm": NAMED_SETS},
                      declarations={"layernorm": lambda o: Declaration(constants={"layernorm.epsilon": o["eps"]})})
    records = run(subject, ["layernorm"], ["oracle"])
    assert sorted((r.option_set, r.options["eps"], r.status) for r in records) == [
        ("bert", 1e-12, "pass"), ("torch", 1e-5, "pass")]
    assert {c.id for c in cases(subject) if c.component.name == "layernorm" and c.check.name == "oracle"} == {
        "layernorm-oracle-bert-layernorm", "layernorm-oracle-torch-layernorm"}
    crossed = replace(subject, options={"layernorm": {"eps": [1e-12, 1e-5], "fused": [True, False]}})
    assert len(run(crossed, ["layernorm"], ["oracle"])) == 4


@pytest.mark.parametrize("options, message", [
    ({"bert": {"epsilon": 1e-12}}, "unknown option 'epsilon'"),
    ({"bert": {"eps": 1e-12}, "fused": [True]}, "option 'bert' lists no values"),
])
def test_an_option_set_the_builder_does_not_take_is_a_usage_error(options, message):
    subject = Subject("bad", {"layernorm": layer_norm_by_eps}, options={"layernorm": options})
    with pytest.raises(SubjectLoadError, match=message):
        check_subject(subject, "cpu", torch.float64, QUICK)
