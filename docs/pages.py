"""The site's HTML: one page per article section, one <section id="E-id"> per equation.

Plain HTML and CSS, no script: the equations are MathML, which browsers render natively.
"""
from __future__ import annotations

import html

from nlpspec.spec import CATALOGUE, Equation

from . import catalogue
from nlpspec.spec.equation import latex

from .mathml import definitions, inline, mathml, shape_latex
from .source import page_name

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 0 auto; padding: 0 1rem 4rem; line-height: 1.5; }
header { padding: 0.75rem 0; border-bottom: 1px solid #ccc; margin-bottom: 1rem; }
header a { margin-right: 0.8rem; }
section.entry { border-top: 1px solid #ddd; padding-top: 0.5rem; margin-top: 1.5rem; }
.equation { overflow-x: auto; font-size: 1.2rem; padding: 0.5rem 0; }
.equation math + math { margin-top: 0.7rem; }
pre { background: #f6f6f6; padding: 0.5rem; overflow-x: auto; }
pre.source { line-height: 1.35; }
.line { display: block; white-space: pre; }
.line:target { background: #fff3b0; }
.line a { color: #999; text-decoration: none; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
.pass { background: #e3f6e3; } .fail { background: #fbe0e0; } .skip { background: #eee; } .variant { background: #e4eefb; }
"""


def layout(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    nav = " ".join(f'<a href="{up}{page}.html">{html.escape(name)}</a>' for page, name, _, _ in catalogue.SECTIONS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · nlpspec</title>
<link rel="stylesheet" href="{up}style.css"></head>
<body><header><a href="{up}index.html"><b>nlpspec</b></a> {nav} <a href="{up}conformance.html">Conformance</a> <a href="{up}guide.html">Guide</a></header>
<main>
<h1>{html.escape(title)}</h1>
{body}
</main></body></html>
"""


def link_to(eid: str, depth: int = 0) -> str:
    return f'{"../" * depth}{catalogue.section_of(eid)}.html#{eid}'


def code_link(code: catalogue.Code) -> str:
    return f'<a href="{page_name(code.path)}#L{code.line}"><code>{html.escape(code.name)}</code></a>'


def symbols_table(eq: Equation) -> str:
    rows = []
    for sym in (*eq.targets, *eq.inputs):
        rows.append(f"<tr><td>{inline(latex(sym))}</td><td><code>{html.escape(sym.name)}</code>"
                    f"</td><td>{inline(shape_latex(sym.shape))}</td></tr>")
    return ('<table class="symbols"><tr><th>symbol</th><th>in the spec</th><th>shape</th></tr>'
            + "".join(rows) + "</table>")


def sequences_table(comp) -> str:
    """A composition's symbols: each indexed by the positions its relations name."""
    import sympy as sp
    indices = {}
    for relation in comp.relations:
        for item in relation.atoms(sp.Indexed):
            indices.setdefault(item.base, set()).update(str(s) for i in item.indices for s in i.free_symbols)
    rows = "".join(f"<tr><td>{inline(latex(base.label))}</td><td>entries indexed by "
                   f"{', '.join(sorted(found)) or 'a constant'}</td></tr>"
                   for base, found in sorted(indices.items(), key=lambda kv: str(kv[0])))
    return f'<table class="symbols"><tr><th>symbol</th><th>shape</th></tr>{rows}</table>' \
        "<p>Each entry has the shape the equations this one composes give it.</p>"


def implementers(eid: str, runs: list[dict]) -> str:
    """Who implements the E-id: the subjects whose checks of it passed in the suite's runs, then the
    libraries known beyond them (catalogue.ELSEWHERE)."""
    found = [html.escape(f) for f in catalogue.found_in(eid, runs)]
    if eid in catalogue.ELSEWHERE:
        found.append("also " + html.escape(catalogue.ELSEWHERE[eid]))
    return "; ".join(found) if found else "no subject of the runs shown on the conformance page, nor any library known to this suite"


def entry(eid: str, refs: dict, runs: list[dict], diagrams: dict) -> str:
    """The section of one E-id."""
    item = CATALOGUE[eid]
    parts = [f'<section class="entry" id="{eid}">', f"<h2><code>{eid}</code></h2>"]
    base = getattr(item, "variant_of", None)
    if base:
        parts.append(f'<p>A named variant of <a href="{link_to(base)}"><code>{base}</code></a>.</p>')
    parts.append(f"<p>{html.escape(item.statement)}</p>")
    parts.append(f'<div class="equation">{mathml(item)}</div>')
    where = definitions(item)
    if where:
        parts.append('<p class="where">where, entry by entry (from each function\'s own definition in '
                     '<code>spec/functions.py</code>):</p><div class="equation">' + "".join(where) + "</div>")
    tex = "\n".join([item.latex] + [f"where {d}" for d in getattr(item, "definitions_latex", ())])
    parts.append(f"<details open><summary>LaTeX, from the same SymPy object</summary><pre>{html.escape(tex)}"
                 f"</pre></details>")
    parts.append(symbols_table(item) if isinstance(item, Equation) else sequences_table(item))
    variants = catalogue.variants_of(eid)
    if variants:
        parts.append("<p>Named variants, and where the suite's runs found each:</p><ul>" + "".join(
            f'<li><a href="{link_to(v)}"><code>{v}</code></a>: {implementers(v, runs)}</li>' for v in variants) + "</ul>")
    parts.append(f"<p>Implemented by: {implementers(eid, runs)}</p>")
    code = refs.get(eid, [])
    parts.append("<p>Reference code: " + (", ".join(code_link(c) for c in code) if code else
                                          "none: <code>reference/</code> does not implement this variant") + "</p>")
    checks = []
    for component in catalogue.components_of(eid):
        names = ", ".join(code_link(catalogue.code(check.body)).replace(
            f"<code>{check.body.__qualname__}</code>", f"<code>{check.name}</code>")
            for check in catalogue.checks_of(component))
        checks.append(f"<li><code>{component}</code>: {names}</li>")
    parts.append(f"<p>Checked by (<code>{html.escape(catalogue.selection(eid))}</code>):</p><ul>"
                 + "".join(checks) + "</ul>")
    if eid in diagrams:
        parts.append(f'<figure><img src="{diagrams[eid]}" alt="dataflow of {eid}" loading="lazy">'
                     f"<figcaption>Dataflow of <code>{eid}</code>, drawn from its SymPy expression: inputs at the "
                     f"bottom, the result at the top.</figcaption></figure>")
    parts.append("</section>")
    return "\n".join(parts)


def figure(path: str, caption: str, eids=()) -> str:
    """A figure; `eids`, the E-ids it draws, linked under it."""
    shows = (" Drawn from " + ", ".join(f'<a href="{link_to(e)}"><code>{e}</code></a>' for e in eids) + ".") if eids else ""
    return (f'<figure><img src="{path}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}{shows}'
            f"</figcaption></figure>")


def section_page(page: str, refs: dict, runs: list[dict], diagrams: dict, figures: list, prose: str = "") -> str:
    _, title, _, summary = next(s for s in catalogue.SECTIONS if s[0] == page)
    eids = catalogue.entries(page)
    body = [f"<p>{html.escape(summary)}</p>", "<p>Equations: " + ", ".join(
        f'<a href="#{e}"><code>{e}</code></a>' for e in eids) + "</p>"]
    body += [f'<div class="prose">{prose}</div>'] if prose else []
    body += [figure(*shown) for shown in figures]
    body += [entry(eid, refs, runs, diagrams) for eid in eids]
    return layout(title, "\n".join(body))


def index_page(figures: list) -> str:
    sections = "".join(f'<li><a href="{page}.html">{html.escape(title)}</a>: {len(catalogue.entries(page))} '
                       f"equations</li>" for page, title, _, _ in catalogue.SECTIONS)
    body = f"""<p>The equations of "Beautifully Illustrated: NLP Models from RNN to Transformer", each
encoded in SymPy in <code>spec/</code>. Every equation on these pages is printed from the same
SymPy object that the test suite compiles into its float64 oracle, so the page cannot say one
thing while the tests check another. Every figure is computed from those oracles when the site
is built.</p>
<ul>{sections}<li><a href="conformance.html">Conformance</a>: which subject passes which component</li>
<li><a href="guide.html">Guide</a>: using the suite, its tolerance rule, its reports, and what it found in real libraries</li></ul>
{"".join(figure(*shown) for shown in figures)}
"""
    return layout("nlpspec: the article, from its executable specification", body)
