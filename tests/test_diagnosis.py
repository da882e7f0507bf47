"""A failure of the oracle check says which named variant, or which common mistake, the subject
computes instead, confirmed on fresh cases (properties/engine/diagnosis.py), or that none does."""
import re
from dataclasses import replace

import pytest
import torch
from hypothesis import Phase, settings

from nlpspec.properties.runner import check_subject
from nlpspec.reference import cells, sequences
from nlpspec.subjects import Subject, load_subject
from nlpspec.subjects.reference import bound
from nlpspec.subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest
QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def oracle_message(subject, component):
    [record] = [r for r in check_subject(subject, "cpu", torch.float64, QUICK, components=[component],
                                         checks=["oracle"]) if r.status == "fail"][:1] or [None]
    assert record is not None, f"{subject.name} passed {component}'s oracle"
    return re.sub(r"\b\d+ fresh (ones|cases)", r"N fresh \1", record.message)  # as many as had a number to judge


@pytest.mark.parametrize("name, component, words", [
    ("attn_unscaled", "attention", "it matches the variant attn.unscaled on this case and N fresh ones: declare it, "
                                   "or fix self.attention"),
    ("pre_ln_declared_post_ln", "encoder.layer", "it matches the variant enc.attn.pre_ln, enc.ffn.pre_ln on this "
                                                 "case and N fresh ones: declare it, or fix enc.attn, enc.ffn"),
    ("attn_scaled_by_d_k", "attention", "it matches a common mistake on this case and N fresh ones: the scores "
                                        "divided by d_k, not √d_k"),
    ("mha_scaled_by_d_model", "mha", "it matches a common mistake on this case and N fresh ones: the scores divided "
                                     "by √d_model, not √d_k"),
    ("gru_update_flipped", "gru.cell", "it matches none of the variants gru.reset_after"),
    ("mha_split_without_transpose", "mha", "it matches a common mistake on this case and N fresh ones: the heads "
                                           "split by a reshape, without the transpose"),
])
def test_the_variant_a_mutant_computes_is_named(name, component, words):
    assert words in oracle_message(MUTANTS[name].subject, component)


def test_a_variant_declared_but_not_computed_is_named():
    reference = load_subject("reference")
    wrong = replace(reference, variants={"pe": "pe.concat"})
    assert "it matches the spec without pe.concat on this case and N fresh ones: declare only the variants it does " \
           "compute" in \
        oracle_message(wrong, "pe")


def reset_after_on_articles_weights(x, h_prev, W_r, b_r, W_z, b_z, W_h, b_h):
    """cuDNN's GRU behind an adapter that maps the article's weights (as subjects/glue.py would), h only."""
    H = h_prev.shape[-1]
    return {"h": cells.gru_cell_reset_after(x, h_prev, W_r, b_r, -W_z, -b_z, W_h[:, H:], b_h, W_h[:, :H],
                                            torch.zeros_like(b_h))["h"]}


def test_a_reset_after_gru_declared_as_the_articles_is_named_in_cells_and_layers():
    """No gates returned: the diagnosis reads the drawn weights as the reset-after cell's (Component.recast)."""
    def layers(params):
        def fn(x, h_prev):
            out, final = sequences.stacked(reset_after_on_articles_weights, params["layers"], x, {"h": h_prev})
            return {"out": out, **final}
        return fn
    subject = Subject("cudnn-style", {"gru.cell": bound(reset_after_on_articles_weights), "gru.layers": layers})
    for component in ("gru.cell", "gru.layers"):
        assert "it matches the variant gru.reset_after on this case and N fresh ones: declare it, or fix " \
               "gru.candidate" in \
            oracle_message(subject, component)
    [cell] = check_subject(subject, "cpu", torch.float64, QUICK, components=["gru.cell"], checks=["oracle"])
    assert cell.returned == ["h"] and cell.unreturned == ["gru.candidate", "gru.reset", "gru.update"]


def test_a_causal_mask_off_by_one_is_named_not_told_to_declare_the_lower_right_variant():
    """tril(1) and the lower-right mask coincide where m = n + 1 (the shrunk or drawn case): fresh
    cases at other sizes rule the variant out and name the mistake; the diagonal hidden likewise
    (its shrunk case is a NaN: query 0 sees no key)."""
    message = oracle_message(MUTANTS["causal_one_ahead"].subject, "attention.causal")
    assert "declare" not in message
    assert "it matches a common mistake on this case and N fresh ones: the causal mask one ahead" in message
    message = oracle_message(MUTANTS["causal_diagonal_masked"].subject, "attention.causal")
    assert "it matches a common mistake on this case and N fresh ones: the causal mask's diagonal hidden" in message


def test_what_fresh_cases_rule_out_is_said(monkeypatch):
    """With no mistake to name, the mask one ahead is told that the lower-right variant it matches on
    the drawn case (n = 4, m = 5) is ruled out by the fresh cases; a mask two ahead matches nothing."""
    from functools import partial

    from nlpspec.properties.engine import diagnosis
    from nlpspec.subjects.zoo.attention import attend, causal, triu_from
    monkeypatch.setattr(diagnosis, "MISTAKES", ())
    message = oracle_message(MUTANTS["causal_one_ahead"].subject, "attention.causal")
    assert "it matches none of the variants mask.causal_lower_right (mask.causal_lower_right: this case only, " \
           "N fresh cases rule it out)" in message and "declare" not in message
    message = oracle_message(Subject("two_ahead", causal(partial(attend, hide=triu_from(3)))), "attention.causal")
    assert "it matches none of the variants mask.causal_lower_right" in message and "declare" not in message


def scores_divided_by(divisor):
    def attention(q, k, v, mask=None):
        weights = torch.softmax(q @ k.transpose(-1, -2) / divisor(q, v) + mask, -1)
        return {"out": weights @ v, "weights": weights}
    return Subject("scaled", {"attention": lambda params: attention})


@pytest.mark.parametrize("divisor, words", [
    (lambda q, v: v.shape[-1] ** 0.5, "the scores divided by √d_v, not √d_k"),  # SDPA given d_v's scale
    (lambda q, v: (2 * q.shape[-1]) ** 0.5, "the scores divided by √(2·d_k), not √d_k"),
])
def test_a_wrong_attention_scale_is_named(divisor, words):
    message = oracle_message(scores_divided_by(divisor), "attention")
    assert f"it matches a common mistake on this case and N fresh ones: {words}" in message
    assert "attn.unscaled on this case" not in message


def test_unbiased_variance_is_named_where_it_gives_nan():
    """At d_model = 1 the n - 1 variance is 0 / 0: the shrunk case is a NaN, the fresh ones name it."""
    message = oracle_message(MUTANTS["ln_unbiased_variance"].subject, "layernorm")
    assert "is nan at index" in message
    assert "it matches a common mistake on this case and N fresh ones: LayerNorm with the unbiased (n - 1) variance" \
        in message


def test_a_constant_factor_is_stated():
    reference = load_subject("reference")

    def doubled(params):
        fn = reference.builders["ffn"](params)
        return lambda z: 2 * fn(z=z)
    message = oracle_message(Subject("doubled", {"ffn": doubled}), "ffn")
    assert "its 'out' is 2 times the oracle's here and on N fresh cases" in message


def test_a_failing_gradient_check_shrinks_without_refining_its_bound_at_every_step(monkeypatch):
    """A wrong variant's gradient is off by orders of magnitude: the shrinking steps judge it on the
    bound's first sample (gradient_check.BEYOND), and only the example reported refines it to all the
    samples. Before, every step refined (37 times here) and the shrinking took 46 s, now 7 s."""
    from hypothesis import Phase

    from nlpspec.properties.engine import tolerance as tol
    refined, final = [], tol.Tolerance.final
    monkeypatch.setattr(tol.Tolerance, "final", lambda self, error=None: refined.append(1) or final(self, error))
    reference = load_subject("reference")
    wrong = replace(reference, variants={"attention": "attn.unscaled"})
    shrinking = settings(QUICK, phases=(Phase.explicit, Phase.generate, Phase.shrink))
    [record] = check_subject(wrong, "cpu", torch.float64, shrinking, components=["attention"], checks=["gradient"])
    assert record.status == "fail" and "the gradient with respect to" in record.message
    assert len(refined) <= 2, len(refined)


@pytest.mark.parametrize("name, component", [("mha_key_padding_ignored", "mha"),
                                             ("enc_key_padding_ignored", "encoder.layer")])
def test_a_dropped_mask_is_named(name, component):
    """Compared as returned: where the article's padding leaves a query undefined, the mistake's is not."""
    assert "it matches a common mistake on this case and N fresh ones: the mask 'key_padding_mask' dropped" in \
        oracle_message(MUTANTS[name].subject, component)


def test_a_forget_bias_added_twice_is_named():
    """A library's two LSTM biases both set to b_f (b_ih and b_hh)."""
    reference = load_subject("reference")

    def twice(params):
        return reference.builders["lstm.cell"]({**params, "b_f": 2 * params["b_f"]})
    message = oracle_message(Subject("twice", {"lstm.cell": twice}), "lstm.cell")
    assert "it matches a common mistake on this case and N fresh ones: the forget bias added twice" in message


def test_a_suggestion_no_fresh_case_can_judge_is_not_named():
    """NaN at d_model = 1, as the unbiased variance gives, and a raise on every larger case: a fresh
    case that is all NaN in both confirms nothing."""
    def build(params):
        def fn(x):
            if x.shape[-1] > 1 or x.shape[0] > 1:
                raise ValueError("only d_model = 1")
            return x * float("nan")
        return fn
    message = oracle_message(Subject("odd", {"layernorm": build}), "layernorm")
    assert "LayerNorm with the unbiased (n - 1) variance matches this case, unconfirmed: no fresh case could be " \
           "judged" in message
    assert "common mistake" not in message


def window_one_narrow(n, m, window):
    """query i sees keys i - w + 1 < j <= i, w - 1 of them."""
    ones = torch.ones(n, m, dtype=torch.bool)
    return ones.triu(1) | ones.tril(-window + 1)


def test_a_sliding_window_off_by_one_is_named_either_way():
    """A window one key too wide (the zoo's) or too narrow is named as that mistake, confirmed on
    fresh cases; a window dropped when it covers the sequence is not called off by one."""
    from nlpspec.subjects.zoo.attention import sliding_mutant
    for component in ("attention.causal", "mha.causal"):
        message = oracle_message(MUTANTS["sliding_window_one_wide"].subject, component)
        assert "it matches a common mistake on this case and N fresh ones: the sliding window one key wider" in \
            message, message
        narrow = sliding_mutant("window_one_narrow", "w - 1 keys", window_one_narrow).subject
        message = oracle_message(narrow, component)
        assert "it matches a common mistake on this case and N fresh ones: the sliding window one key narrower" in \
            message, message
    message = oracle_message(MUTANTS["sliding_window_unmasked_when_covering"].subject, "attention.causal")
    assert "sliding window one key" not in message, message
