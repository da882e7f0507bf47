"""A failure of the oracle check says which named variant the subject computes instead, if one
does (Harness.matching_variant), or that none of them does."""
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
    return record.message


@pytest.mark.parametrize("name, component, words", [
    ("attn_unscaled", "attention", "it matches the variant attn.unscaled on this case: declare it, or fix "
                                   "self.attention"),
    ("pre_ln_declared_post_ln", "encoder.layer", "it matches the variant enc.attn.pre_ln, enc.ffn.pre_ln on this "
                                                 "case: declare it, or fix enc.attn, enc.ffn"),
    ("attn_scaled_by_d_k", "attention", "it matches none of the variants attn.unscaled"),
    ("gru_update_flipped", "gru.cell", "it matches none of the variants gru.reset_after"),
])
def test_the_variant_a_mutant_computes_is_named(name, component, words):
    assert words in oracle_message(MUTANTS[name].subject, component)


def test_a_variant_declared_but_not_computed_is_named():
    reference = load_subject("reference")
    wrong = replace(reference, variants={"pe": "pe.concat"})
    assert "it matches the spec without pe.concat on this case: declare only the variants it does compute" in \
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
        assert "it matches the variant gru.reset_after on this case: declare it, or fix gru.candidate" in \
            oracle_message(subject, component)
    [cell] = check_subject(subject, "cpu", torch.float64, QUICK, components=["gru.cell"], checks=["oracle"])
    assert cell.returned == ["h"] and cell.unreturned == ["gru.candidate", "gru.reset", "gru.update"]
