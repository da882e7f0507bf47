"""The article's pictures, drawn at build time from the spec's own compositions and equations (graphviz
lays them out), so a picture cannot say other than what the tests check.

- A recurrent architecture is its composition unrolled: each relation `h_t = cell(h_{t-1}, x_t)` of
  seq.many_to_many, seq.stacked, seq.bidirectional, seq.seq2seq is instantiated at a few steps (and
  layers), a node per value, an operation node per application, its E-id on it.
- An attention or Transformer block is its equations chained by the symbols they share: each equation an
  operation node (its E-id, its right-hand side's outer operation), edges from the symbols it reads to the
  symbols it defines; a symbol the article names as a function of others (MultiHead(X, X, X), FFN(Z)) is
  drawn as that function of them. A variant E-id draws its own picture (pre-LN moves the LayerNorm).
"""
from __future__ import annotations

import itertools
import pathlib
import re
import shutil

import graphviz
import sympy as sp

from nlpspec.spec import CATALOGUE
from nlpspec.spec.equation import LATEX_NAMES, latex

COLOURS = {"input": "#eef4fb", "value": "#ffffff", "output": "#fff3b0", "operation": "#f3f3f3"}
FONT = "Helvetica"
SYMBOLS = {r"\alpha": "α", r"\beta": "β", r"\gamma": "γ", r"\sigma": "σ", r"\mu": "μ", r"\varepsilon": "ε",
           r"\odot": "⊙", r"\times": "×", r"\cdot": "·", r"\ldots": "…", r"\cdots": "⋯", r"\langle": "⟨", r"\rangle": "⟩",
           r"\top": "⊤", r"\tanh": "tanh", r"\sqrt": "√", r"\lnot": "¬", r"\infty": "∞", r"\quad": " "}
ACCENTS = {"hat": "\u0302", "tilde": "\u0303", "overrightarrow": "\u20d7", "overleftarrow": "\u20d6"}


def html(tex: str) -> str:
    """A graphviz HTML label from the spec's LaTeX: scripts as <SUB>/<SUP>, Greek and accents as Unicode."""
    tex = tex.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    tex = re.sub(r"\\(left|right)\b|\\[,:;!]", "", tex)
    tex = re.sub(r"\\(operatorname|mathrm|mathbf|text)\{([^{}]*)\}", r"\2", tex)
    group = r"\{((?:[^{}]|\{[^{}]*\})*)\}"  # a braced group, one level of braces inside
    tex = re.sub(r"\\sqrt" + group, r"√(\1)", tex)
    tex = re.sub(r"\\frac" + group + group, r"\1/\2", tex)
    for name, mark in ACCENTS.items():
        tex = re.sub(rf"\\{name}\{{(\w)\}}", lambda m: m.group(1) + mark, tex)
    for command, text in sorted(SYMBOLS.items(), key=lambda kv: -len(kv[0])):
        tex = tex.replace(command, text)
    out, k = "", 0
    while k < len(tex):
        c = tex[k]
        if c in "_^" and k + 1 < len(tex):
            tag = "SUB" if c == "_" else "SUP"
            if tex[k + 1] == "{":
                depth, end = 0, k + 1
                for end in range(k + 1, len(tex)):
                    depth += {"{": 1, "}": -1}.get(tex[end], 0)
                    if depth == 0:
                        break
                out += f"<{tag}>{html(tex[k + 2:end])}</{tag}>"
                k = end + 1
            else:
                out += f"<{tag}>{tex[k + 1]}</{tag}>"
                k += 2
            continue
        out += c
        k += 1
    return out.replace("{", "").replace("}", "").replace("\\", "").replace(" - ", "−").replace("-", "−")


def digraph(name: str) -> graphviz.Digraph:
    """A figure in the site's one style."""
    if shutil.which("dot") is None:
        raise RuntimeError("the site's pictures need graphviz's `dot`: apt-get install graphviz")
    g = graphviz.Digraph(name, format="svg")
    g.attr(rankdir="LR", fontname=FONT, fontsize="11", newrank="true", nodesep="0.25", ranksep="0.35")
    g.attr("node", fontname=FONT, fontsize="11", shape="box", style="rounded,filled", fillcolor=COLOURS["value"],
           color="#555555", height="0.3")
    g.attr("edge", color="#555555", arrowsize="0.6")
    return g


def edge(g, tail: str, head: str):
    """An edge, once (a relation instantiated twice draws it twice)."""
    drawn = g.__dict__.setdefault("drawn_edges", set())
    if (tail, head) not in drawn:
        drawn.add((tail, head))
        g.edge(tail, head)


def node(g, key: str, tex: str, kind: str = "value"):
    g.node(key, f"<{html(tex)}>", fillcolor=COLOURS[kind], shape="box" if kind != "operation" else "ellipse")


def operation(g, key: str, head: str, eid: str = ""):
    tag = f'<BR/><FONT POINT-SIZE="9" COLOR="#2255aa">{eid}</FONT>' if eid else ""
    g.node(key, f"<{html(head)}{tag}>", fillcolor=COLOURS["operation"], shape="ellipse")


# --- recurrent architectures: compositions unrolled --------------------------------------------

def instantiate(expr, values: dict, layer: int | None):
    """expr at the given index values, a layered base name (h^{(l)}) at layer `layer`."""
    expr = expr.subs(values)
    if layer is None:
        return expr
    named = {b: sp.IndexedBase(b.label.name.replace("(l)", f"({layer})").replace("(l-1)", f"({layer - 1})"))
             for b in expr.atoms(sp.IndexedBase)}
    return expr.xreplace(named)


def unrolled(g, eid: str, values: dict, inputs: tuple = ("x",), layer: int | None = None, prefix: str = "",
             tag: str = ""):
    """Draw the composition `eid` at every combination of `values` ({index symbol: steps}): a node per
    value, an operation node (its E-id, or `tag`) per application of a function, an edge per argument."""
    for relation in CATALOGUE[eid].relations:
        fixed = {s: v for s, v in values.items() if isinstance(v, int)}
        free = [s for s in values if s in relation.free_symbols and s not in fixed]
        for combo in itertools.product(*(values[s] for s in free)):
            at = dict(zip(free, combo)) | fixed
            lhs, rhs = (instantiate(side, at, layer) for side in (relation.lhs, relation.rhs))
            target = prefix + str(lhs)
            node(g, target, latex(lhs))
            if isinstance(rhs, sp.Indexed):  # an identity: h^{(0)}_t = x_t
                args, head = [rhs], None
            elif isinstance(rhs, sp.MatrixBase):  # a concatenation
                args, head = list(rhs), r"[\cdot\,;\,\cdot]"
            else:
                args, head = [a for a in rhs.args if isinstance(a, sp.Indexed)], latex(rhs.func).split(r"{\left(")[0]
            op = f"{target}@op"
            if head is not None:
                operation(g, op, head, tag or eid)
                edge(g, op, target)
            for arg in args:
                key = prefix + str(arg)
                node(g, key, latex(arg), "input" if arg.base.label.name in inputs else "value")
                edge(g, key, op if head is not None else target)


def _figure(name: str, out: pathlib.Path, build) -> str:
    g = digraph(name)
    build(g)
    g.render(filename=name, directory=str(out), cleanup=True)
    return f"{name}.svg"


def _steps(eid: str) -> dict:
    """The index symbols of a composition's relations, at three steps (T the last)."""
    found = {s.name: s for r in CATALOGUE[eid].relations for s in r.free_symbols}
    values = {found[n]: (1, 2, 3) for n in ("t", "j", "i") if n in found}
    return values | ({found["T"]: 3} if "T" in found else {})


def unrolled_rnn(out: pathlib.Path) -> tuple[str, str]:
    """rnn.cell, rnn.output: the vanilla RNN unrolled over time (seq.many_to_many with the output of each step)."""
    def build(g):
        unrolled(g, "seq.many_to_many", _steps("seq.many_to_many"), tag="rnn.cell, seq.many_to_many")
        t = sp.Symbol("t", integer=True)
        for step in (1, 2, 3):
            h = str(sp.IndexedBase("h")[step])
            operation(g, f"y{step}@op", r"\operatorname{softmax}", "rnn.output")
            node(g, f"y{step}", latex(sp.IndexedBase("y")[t].subs(t, step)), "output")
            edge(g, h, f"y{step}@op")
            edge(g, f"y{step}@op", f"y{step}")
    return _figure("unrolled_rnn", out, build), \
        "The RNN unrolled: seq.many_to_many at three steps, each cell (rnn.cell) reading the previous state and " \
        "the input, each state read out by rnn.output."


def architectures_by_task(out: pathlib.Path) -> tuple[str, str]:
    """seq.many_to_many, seq.many_to_one, one-to-many (seq.seq2seq's decoder alone), seq.seq2seq."""
    panels = (("many-to-many (seq.many_to_many)", ("seq.many_to_many",), ("x",)),
              ("many-to-one (seq.many_to_one)", ("seq.many_to_many", "seq.many_to_one"), ("x",)),
              ("one-to-many (the decoder of seq.seq2seq, from one input)", ("seq.seq2seq",), ("y", "h")),
              ("seq2seq (seq.many_to_many, then seq.seq2seq)", ("seq.many_to_many", "seq.seq2seq"), ("x", "y")))

    def build(g):
        for k, (title, eids, inputs) in reversed(list(enumerate(panels))):  # dot stacks clusters bottom-up
            with g.subgraph(name=f"cluster_{k}") as panel:
                panel.attr(label=title, style="rounded", color="#999999")
                for eid in eids:
                    unrolled(panel, eid, _steps(eid), inputs, prefix=f"panel{k}/")
    return _figure("architectures_by_task", out, build), \
        "RNN architectures by task, each unrolled from its composition: many-to-many, many-to-one, one-to-many and " \
        "the encoder-decoder (seq2seq), whose decoder starts from the encoder's last state."


def stacked_rnn(out: pathlib.Path) -> tuple[str, str]:
    """seq.stacked: two layers of three steps."""
    def build(g):
        for layer in (1, 2):
            unrolled(g, "seq.stacked", _steps("seq.stacked"), layer=layer)
    return _figure("stacked_rnn", out, build), \
        "A stacked RNN (seq.stacked), two layers: the state sequence of layer l is the input of layer l+1."


def bidirectional_rnn(out: pathlib.Path) -> tuple[str, str]:
    """seq.bidirectional: a forward and a backward chain, concatenated per step."""
    def build(g):
        unrolled(g, "seq.bidirectional", _steps("seq.bidirectional"))
    return _figure("bidirectional_rnn", out, build), \
        "A bidirectional RNN (seq.bidirectional): a second chain reads the sequence backwards; the two states " \
        "are concatenated at every step."


# --- attention and the Transformer: equations chained by their symbols --------------------------

PARAMETER = re.compile(r"^(W|b|gamma|beta|Emb)(_|$)")
CALL = re.compile(r"^\\operatorname\{(\w+)\}\((.*)\)$")


def head_of(expr) -> str:
    """The outer operation of a right-hand side, as the article writes it (softmax, LN_{γ,β}, +, ×)."""
    if hasattr(type(expr), "_latex"):
        return latex(expr).split(r"\left(")[0]
    return {"MatAdd": "+", "MatMul": r"\times", "HadamardProduct": r"\odot"}.get(type(expr).__name__,
                                                                               type(expr).__name__)


def visible(tex: str) -> int:
    return len(re.sub(r"<[^>]+>", "", html(tex)))


def compact(expr, room: int = 40) -> str:
    """LaTeX of expr, its inner parts elided to (⋯) where the whole would be longer than `room`."""
    whole = latex(expr)
    if visible(whole) <= room or not expr.args:
        return whole
    if hasattr(type(expr), "_latex"):
        return head_of(expr) + r"\left(\cdots\right)"
    parts = [compact(a, room // 2) for a in expr.args if isinstance(a, sp.Basic) and not a.is_Number]
    parts = [rf"\left({p}\right)" if isinstance(a, sp.MatAdd) and type(expr).__name__ == "MatMul" else p
             for a, p in zip([a for a in expr.args if isinstance(a, sp.Basic) and not a.is_Number], parts)]
    joiner = {"MatAdd": " + ", "HadamardProduct": r" \odot "}.get(type(expr).__name__, " ")
    return joiner.join(parts)


def label_of(eq) -> str:
    """An equation's operation as the article writes it, from its right-hand side (LN_{γ_1,β_1}(MultiHead(X,
    X, X) + X): the residual, then LN), inner parts elided where it is long."""
    return r",\quad ".join(compact(e) for e in eq.expressions)


def split_args(text: str) -> list[str]:
    """`A, E, E` (commas at the outer level; `; M` a mask's) as arguments."""
    args, depth, current = [], 0, ""
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c in ",;" and depth == 0:
            args.append(current.strip())
            current = ""
        else:
            current += c
    return args + [current.strip()] if current.strip() else args


def symbol_node(g, tex: str, producers: dict, drawn: dict, prefix: str) -> str:
    """The node of a symbol by its article name; one named F(args) is drawn as F applied to them."""
    key = prefix + tex
    if key in drawn:
        return drawn[key]
    family = tex.split("_")[0]
    if tex != family and prefix + family in drawn:  # head_1, …, head_h: the family head_n drawn before
        return drawn[prefix + family]
    drawn[key] = key
    call = CALL.match(tex)
    if call:
        function, args = call.groups()
        operation(g, key + "@op", rf"\operatorname{{{function}}}", producers.get(function, ""))
        node(g, key, tex)
        edge(g, key + "@op", key)
        sources = [symbol_node(g, a, producers, drawn, prefix) for a in split_args(args) if a != r"\ldots"]
        for source in dict.fromkeys(sources):
            edge(g, source, key + "@op")
    else:
        node(g, key, tex, "input")
    return key


def chained(g, eids, prefix: str = "") -> None:
    """Each equation an operation node (its E-id) from the symbols it reads to those it defines."""
    producers = {LATEX_NAMES.get(t.name, t.name).removeprefix(r"\operatorname{").rstrip("}"): e.eid
                 for e in CATALOGUE.values() if hasattr(e, "targets") for t in e.targets}
    drawn: dict = {}  # a symbol's (or a family's: head) article name -> its node
    for eid in eids:
        eq = CATALOGUE[eid]
        op = f"{prefix}{eid}@op"
        operation(g, op, label_of(eq), eid)
        for s in eq.inputs:
            if not PARAMETER.match(s.name):
                edge(g, symbol_node(g, latex(s), producers, drawn, prefix), op)
        for t in eq.targets:
            key = prefix + latex(t)
            if "_" in latex(t):  # a family (head_n): its members (head_1, …, head_h) name it
                drawn[prefix + latex(t).split("_")[0]] = key
            if key in drawn:
                g.node(key, fillcolor=COLOURS["output"])
            else:
                drawn[key] = key
                node(g, key, latex(t), "output")
            edge(g, op, key)


def _chain_figure(name: str, eids, caption: str, repeat: str = ""):
    def make(out: pathlib.Path) -> tuple[str, str]:
        def build(g):
            g.attr(rankdir="BT")
            with g.subgraph(name="cluster_block") as block:
                block.attr(label=repeat, style="rounded", color="#999999")
                chained(block, eids)
        return _figure(name, out, build), caption
    make.__name__, make.eids = name, tuple(eids)
    return make


seq2seq_attention = _chain_figure(
    "seq2seq_attention", ("attn.score", "attn.weights", "attn.context"),
    "Seq2seq with attention: the decoder states S are scored against the encoder states H (attn.score), the "
    "scores turned into weights (attn.weights), and the weighted sum of H is the context C fed to the decoder "
    "(attn.context).")
self_attention = _chain_figure(
    "self_attention", ("self.qkv", "mask.causal"),
    "Self-attention: every token projected to a query, a key and a value (self.qkv); scores of each query against "
    "every key, scaled, masked (mask.causal in a decoder), softmax, times V.")
multi_head_attention = _chain_figure(
    "multi_head_attention", ("mha.head", "mha.output"),
    "Multi-head attention: each head attends with its own projections (mha.head); the heads are concatenated and "
    "projected by W_O (mha.output).", r"h heads")
encoder_block = _chain_figure(
    "encoder_block", ("enc.attn", "enc.ffn"),
    "The Transformer's encoder layer, from its equations: multi-head self-attention, residual and LayerNorm "
    "(enc.attn), the feed-forward network, residual and LayerNorm (enc.ffn); N such layers (transformer.encoder).",
    "N layers (transformer.encoder)")
decoder_block = _chain_figure(
    "decoder_block", ("dec.self", "dec.cross", "dec.ffn", "classifier"),
    "The Transformer's decoder layer, from its equations: masked self-attention (dec.self), attention to the "
    "encoder's output E (dec.cross), the feed-forward network (dec.ffn), N such layers (transformer.decoder), "
    "and the classifier on top.", "N layers (transformer.decoder)")

unrolled_rnn.eids = ("seq.many_to_many", "rnn.cell", "rnn.output")
architectures_by_task.eids = ("seq.many_to_many", "seq.many_to_one", "seq.seq2seq")
stacked_rnn.eids = ("seq.stacked",)
bidirectional_rnn.eids = ("seq.bidirectional",)

PAGE_FIGURES = {
    "recurrent-cells": (unrolled_rnn,),
    "rnn-architectures": (architectures_by_task, stacked_rnn, bidirectional_rnn),
    "attention": (seq2seq_attention, self_attention, multi_head_attention),
    "transformer": (encoder_block, decoder_block),
}
