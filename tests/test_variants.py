"""torch's GRU is the reset-after variant: the suite passes it as that and fails it as the article's."""
from dataclasses import replace

import pytest
import torch
from hypothesis import Phase, settings

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import Subject, load_subject

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def gru_oracle(subject):
    records = check_subject(subject, "cpu", torch.float64, QUICK, components=["gru.cell"])
    return next(r for r in records if r.check == "oracle")


def test_torch_gru_passes_as_the_reset_after_variant():
    record = gru_oracle(load_subject("torch"))
    assert (record.status, record.variant) == ("pass", "gru.reset_after")
    assert "gru.reset_after" in record.eids and "gru.candidate" not in record.eids


def test_torch_gru_fails_as_the_articles_gru():
    torch_subject = load_subject("torch")
    undeclared = replace(torch_subject, variants={})
    record = gru_oracle(undeclared)
    assert record.status == "fail"
    assert "value: the subject computes a different function" in record.message


def test_readme_worked_example_passes_every_check():
    records = check_subject(load_subject("examples.my_lstm:SUBJECT"), "cpu", torch.float64, QUICK)
    assert {r.component for r in records if r.status != "skip"} == {"lstm.cell"}
    assert all(r.status == "pass" for r in records if r.status != "skip"), [r.message for r in records]


def records_of(subject, components, dtype=torch.float64, checks=("oracle",)):
    return [r for r in check_subject(subject, "cpu", dtype, QUICK, components=components, checks=checks)
            if r.status != "skip"]


def test_torch_mask_conventions_pass_as_their_named_variants():
    records = records_of(load_subject("torch"), ["attention", "mha"])
    assert {(r.component, r.variant) for r in records} == {("attention", "mask.bool_true_attends"),
                                                           ("mha", "mask.bool_true_masked")}
    assert all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]


@pytest.mark.parametrize("component, wrong", [("attention", "mask.bool_true_masked"),
                                              ("mha", "mask.bool_true_attends")])
def test_a_mask_passed_with_the_wrong_polarity_is_caught(component, wrong):
    """An adapter declaring the other boolean convention hands its library inverted masks."""
    subject = load_subject("torch")
    flipped = replace(subject, variants={**subject.variants, component: wrong})
    oracle = [r for r in records_of(flipped, [component]) if r.check == "oracle"]
    assert oracle and all(r.status == "fail" for r in oracle)
    assert all(f"(variant {wrong})" in r.message and "value: the subject computes a different function" in r.message
               or "is nan" in r.message for r in oracle), [r.message for r in oracle]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tiled_online_softmax_passes_every_check_with_its_variants(dtype):
    records = records_of(load_subject("examples.tiled_attention:SUBJECT"), None, dtype, checks=None)
    assert {r.component for r in records} == {"attention", "attention.causal"}
    assert all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]
    assert {r.variant for r in records} == {"mask.bool_true_attends", "mask.causal_lower_right"}


def test_lower_right_causal_mask_fails_as_the_articles():
    subject = load_subject("examples.tiled_attention:SUBJECT")
    undeclared = replace(subject, variants={"attention": "mask.bool_true_attends"})
    [record] = [r for r in records_of(undeclared, ["attention.causal"]) if r.check == "oracle"]
    assert record.status == "fail" and record.message.startswith("[mask.causal]")


def marian_positions(params):
    """Sines then cosines at the article's frequencies, laid out as Hugging Face's Marian does."""
    def fn(x):
        n, d = x.shape[-2:]
        angle = torch.tensor([[pos / 10000 ** (2 * (j // 2) / d) for j in range(d)] for pos in range(n)],
                             dtype=torch.float64)
        P = torch.cat([torch.sin(angle[:, 0::2]), torch.cos(angle[:, 1::2])], -1).to(x.dtype).to(x.device)
        return {"out": x + P, "P": P}
    return fn


@pytest.mark.parametrize("declared, status", [("pe.concat", "pass"), (None, "fail")])
def test_sines_then_cosines_passes_as_pe_concat_only(declared, status):
    from nlpspec.subjects import Subject
    subject = Subject("marian", {"pe": marian_positions}, variants={"pe": declared} if declared else {})
    [record] = records_of(subject, ["pe"])
    assert record.status == status, record.message
    assert record.eids == (["pe.concat"] if declared else ["pe.sin", "pe.cos", "pe.input"])


def scaled_embeddings(params):
    """Embeddings scaled by √d_model before P is added (the original paper's embedding layer)."""
    from nlpspec.reference.attention import positional_encoding

    def fn(x):
        P = positional_encoding(x.shape[-2], x.shape[-1], x.dtype, x.device)
        return {"out": x * x.shape[-1] ** 0.5 + P, "P": P}
    return fn


@pytest.mark.parametrize("component, builder, variant", [
    ("attention", "zoo.attn_unscaled", "attn.unscaled"),
    ("pe", scaled_embeddings, "pe.scaled_input"),
])
def test_other_named_variants_pass_as_themselves_and_fail_as_the_article(component, builder, variant):
    from nlpspec.subjects import Subject
    build = load_subject(builder).builders[component] if isinstance(builder, str) else builder
    declared = Subject("variant", {component: build}, variants={component: variant})
    [passed] = records_of(declared, [component])
    assert passed.status == "pass" and variant in passed.eids, passed.message
    [failed] = records_of(Subject("undeclared", {component: build}), [component])
    assert failed.status == "fail"


def test_pytorch_tutorials_float32_positions_are_a_precision_finding_in_float64():
    """The tutorial's PositionalEncoding computes P in float32: reported as precision, not as a wrong equation."""
    from nlpspec.subjects import Subject
    from nlpspec.subjects.torch_transformer import tutorial_positions

    def build(params):
        def fn(x):
            P = tutorial_positions(x.shape[1], x.shape[2], x.dtype, x.device, work=torch.float32)
            return {"out": x + P, "P": P}
        return fn
    [record] = records_of(Subject("tutorial", {"pe": build}), ["pe"])
    assert record.status == "fail" and "precision: the subject computes in float32 in a float64 run" in record.message


def tied_model(params):
    """The reference model with the classifier's weights tied to the target embedding."""
    from nlpspec.reference import transformer as ref

    def fn(src, tgt, src_key_padding_mask):
        out, memory = ref.model(src, tgt, {**params, "W_c": params["tgt_embedding"].T},
                                src_mask=src_key_padding_mask[:, None, None, :])
        return {"out": out, "memory": memory}
    return fn


@pytest.mark.parametrize("declared, status", [("classifier.tied", "pass"), (None, "fail")])
def test_tied_classifier_passes_as_its_variant_only(declared, status):
    from nlpspec.subjects import Subject
    subject = Subject("tied", {"transformer": tied_model}, variants={"transformer": declared} if declared else {})
    [record] = records_of(subject, ["transformer"])
    assert record.status == status, record.message
    assert ("classifier.tied" in record.eids) == bool(declared)


def test_a_layer_is_stepped_with_the_cell_of_its_own_variant():
    """A knob that switches the variant (Keras' GRU reset_after): the layer's run with reset_after on
    is stepped with the cell built with reset_after on, not with the cell's first option set."""
    reference = load_subject("reference").builders
    variant = {"gru.cell": lambda o: "gru.reset_after" if o["reset_after"] else None}
    variant["gru.layers"] = variant["gru.cell"]
    switched = Subject("switched", {name: (lambda build: lambda params, reset_after: build(params))(reference[name])
                                    for name in ("gru.cell", "gru.layers")},
                       variants=variant, options={name: {"reset_after": [False, True]} for name in variant})
    records = check_subject(switched, "cpu", torch.float64, settings(settings.get_profile("ci"), max_examples=5),
                            components=["gru.layers"], checks=["unroll_equals_steps"])
    assert [(r.options, r.variant, r.status) for r in records] == [
        ({"reset_after": False}, "", "pass"), ({"reset_after": True}, "gru.reset_after", "pass")], records


def test_a_stack_with_its_own_final_norm_is_declared_as_such_and_a_forgotten_one_is_caught():
    """nn.TransformerEncoder/Decoder(norm=...) after pre-LN layers (GPT-2's ln_f) is the variant
    stack.final_norm of encoder and decoder, as of the model; a stack that declares it and does
    not apply it fails the oracle."""
    from nlpspec.subjects import torch_transformer

    torch_subject = load_subject("torch")
    quick = settings(settings.get_profile("ci"), max_examples=5)
    final_norm = torch_transformer.sets("pre_ln_final_norm")
    pre_ln = torch_transformer.sets("pre_ln")
    final = replace(torch_subject, options={"encoder": final_norm, "decoder": final_norm, "encoder.layer": pre_ln,
                                            "decoder.layer": pre_ln})
    records = check_subject(final, "cpu", torch.float64, quick, components=["encoder", "decoder"])
    assert records and all(r.status == "pass" for r in records), \
        [(r.id, r.message) for r in records if r.status != "pass"]
    assert all("stack.final_norm" in r.variant for r in records)
    assert all("stack.final_norm" in r.eids for r in records if r.check == "oracle")
    assert {r.check for r in records} >= {"oracle", "stacked_layers", "incremental_decoding"}

    def forgets(params, norm_first, final_norm):
        return torch_transformer.encoder_builder(params, norm_first=True)
    forgetful = replace(torch_subject, name="forgets", builders={"encoder": forgets}, options={"encoder": final_norm},
                        variants={"encoder": torch_subject.variants["encoder"]}, expected_failures={}, declarations={})
    [oracle] = check_subject(forgetful, "cpu", torch.float64, quick, components=["encoder"], checks=["oracle"])
    assert oracle.status == "fail" and "disagrees with the oracle" in oracle.message
