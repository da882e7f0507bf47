"""The article's pictures (docs/pictures.py): drawn from the spec's compositions and equations, so that
a change of the spec changes them; every one names the E-ids it draws, and together they draw every
architecture of the article."""
import re
from xml.dom import minidom

import pytest
import sympy as sp

from nlpspec.docs import pictures
from nlpspec.spec import CATALOGUE

from optional import require

pytestmark = pytest.mark.selftest


@pytest.fixture
def dot():
    """The pictures are laid out by graphviz's dot."""
    require("dot")

ALL = [make for makes in pictures.PAGE_FIGURES.values() for make in makes]


def text_of(svg) -> str:
    """The text of an SVG's labels, its E-ids among them."""
    dom = minidom.parse(str(svg))
    return " ".join(t.firstChild.data for t in dom.getElementsByTagName("text") if t.firstChild is not None)


@pytest.mark.parametrize("make", ALL, ids=lambda m: m.__name__)
def test_each_picture_is_an_svg_naming_its_eids(make, tmp_path, dot):
    name, caption = make(tmp_path)
    text = text_of(tmp_path / name)
    assert caption and set(make.eids) <= set(CATALOGUE)
    drawn = {eid for eid in CATALOGUE if re.search(rf"(?<![\w.]){re.escape(eid)}(?![\w.])", text)}
    assert set(make.eids) <= drawn, f"{name} claims {set(make.eids) - drawn} and does not draw them"


def test_the_pictures_draw_every_architecture_of_the_article():
    drawn = {eid for make in ALL for eid in make.eids}
    article = {"rnn.cell", "rnn.output", "seq.many_to_one", "seq.many_to_many", "seq.stacked", "seq.bidirectional",
               "seq.seq2seq", "attn.score", "attn.weights", "attn.context", "self.qkv", "mask.causal", "mha.head",
               "mha.output", "enc.attn", "enc.ffn", "dec.self", "dec.cross", "dec.ffn", "classifier"}
    assert article <= drawn, article - drawn


def test_a_variant_draws_its_own_block(tmp_path, dot):
    """Pre-LN (enc.attn.pre_ln) moves the LayerNorm before MultiHead: the picture says so, from the spec."""
    post = pictures._chain_figure("post", ("enc.attn", "enc.ffn"), "")(tmp_path)[0]
    pre = pictures._chain_figure("pre", ("enc.attn.pre_ln", "enc.ffn.pre_ln"), "")(tmp_path)[0]
    post, pre = text_of(tmp_path / post), text_of(tmp_path / pre)
    assert "MultiHead(LN(X))" in pre.replace(" ", "") and "MultiHead(LN(X))" not in post.replace(" ", "")


def test_a_changed_composition_changes_its_picture(tmp_path, monkeypatch, dot):
    """A backward chain that read h_{t-1} (a bidirectional RNN gone wrong) would be drawn so."""
    before = text_of(tmp_path / pictures.bidirectional_rnn(tmp_path)[0])
    comp = CATALOGUE["seq.bidirectional"]
    relations = [r.xreplace({sp.Symbol("t", integer=True) + 1: sp.Symbol("t", integer=True) - 1})
                 for r in comp.relations]
    monkeypatch.setitem(CATALOGUE, "seq.bidirectional", type(comp)(comp.eid, comp.statement, tuple(relations)))
    after = text_of(tmp_path / pictures.bidirectional_rnn(tmp_path)[0])
    assert before != after
    assert "4" in before and "4" not in after  # the backward chain started at step T + 1 = 4; now at 0


def test_a_picture_without_dot_says_what_to_install(monkeypatch):
    monkeypatch.setattr(pictures.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        pictures.digraph("x")
