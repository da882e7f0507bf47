"""The documentation site (python -m nlpspec.docs): complete, and every link and figure in place."""
import html
import json
import os
import re
from collections import Counter

import pytest

from nlpspec.spec import CATALOGUE
from optional import missing, require

pytestmark = pytest.mark.selftest


def html_files(root):
    return sorted(root.rglob("*.html"))


def test_every_eid_has_exactly_one_section(site):
    root, pages = site
    found = Counter(eid for page in pages for eid in re.findall(r'<section class="entry" id="([^"]+)"', page.read_text()))
    assert set(found) == set(CATALOGUE), f"missing: {set(CATALOGUE) - set(found)}, unknown: {set(found) - set(CATALOGUE)}"
    assert [eid for eid, n in found.items() if n != 1] == []


def test_sections_follow_the_article(site):
    root, pages = site
    nav = re.findall(r'<a href="([a-z-]+)\.html">\d\. ', pages[0].read_text())
    assert nav == ["recurrent-cells", "rnn-architectures", "attention", "transformer"]


def test_every_equation_is_mathml_with_its_latex(site):
    root, pages = site
    for page in pages[:4]:
        text = page.read_text()
        for eid, body in re.findall(r'<section class="entry" id="([^"]+)">(.*?)</section>', text, re.S):
            assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in body, eid
            assert "ARG" not in re.sub(r"<pre>.*?</pre>", "", body, flags=re.S), f"{eid}: a placeholder left in the MathML"
            latex = re.search(r"<pre>(.*?)</pre>", body, re.S).group(1)
            assert latex.strip(), eid


def test_every_math_element_is_well_formed_xml(site):
    """sympy's MathML printer writes text unescaped: a `<` of a mask's condition once broke a page."""
    from html.entities import html5
    from xml.dom import minidom

    def numeric(m):  # HTML's named entities (&InvisibleTimes;) as character references, for the XML parser
        name = m.group(1)
        return m.group(0) if name in ("lt", "gt", "amp", "quot", "apos") else \
            "".join(f"&#{ord(c)};" for c in html5[name + ";"])
    root, pages = site
    for page in pages:
        for k, math in enumerate(re.findall(r"<math\b.*?</math>", page.read_text(), re.S)):
            math = re.sub(r"&([A-Za-z]+);", numeric, math)
            try:
                minidom.parseString(math)
            except Exception as exc:
                raise AssertionError(f"{page.name}, math element {k}: {exc}\n{math[:300]}") from None


def test_functions_are_defined_entry_by_entry(site):
    """LN, softmax, σ, the masks: each section states them, so N = LN(X) is not left opaque."""
    root, pages = site
    text = (root / "transformer.html").read_text()
    layernorm = re.search(r'<section class="entry" id="layernorm">(.*?)</section>', text, re.S).group(1)
    assert "where, entry by entry" in layernorm and r"\mu_{i} = " in layernorm and r"\sigma_{i}^{2} = " in layernorm


def test_every_figure_is_produced_and_not_empty(site):
    root, pages = site
    sources = {src for page in pages for src in re.findall(r'<img src="([^"]+)"', page.read_text())}
    assert {"figures/positional_encoding.png", "figures/causal_attention.png", "figures/gates.png",
            "figures/gradient_norms.png", "figures/rnn_against_attention.png"} <= sources
    assert sum(s.startswith("figures/dataflow_") for s in sources) == sum(hasattr(e, "targets") for e in CATALOGUE.values())
    for src in sources:
        assert (root / src).stat().st_size > 1000, f"{src} is (nearly) empty"


def broken_links(root) -> list[str]:
    """Every href and src of the site's pages that names no file, or no id in that file."""
    ids, broken = {}, []
    for page in html_files(root):
        for target in re.findall(r'(?:href|src)="([^"]+)"', page.read_text()):
            if target.startswith(("http:", "https:", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(root)} -> {target}: no such file")
                continue
            if anchor:
                if file not in ids:
                    ids[file] = set(re.findall(r'id="([^"]+)"', file.read_text()))
                if anchor not in ids[file]:
                    broken.append(f"{page.relative_to(root)} -> {target}: no such anchor")
    return broken


def test_every_internal_link_resolves(site):
    root, _ = site
    assert broken_links(root) == []


def test_every_page_of_the_guide_is_rendered(site):
    """docs/guide/*.md, each a page of the site under its own title, listed on the guide's index, its
    tables rendered as tables and its links to other pages made links to their HTML."""
    from nlpspec.docs import guide
    root, _ = site
    index = (root / "guide.html").read_text()
    for name in guide.names():
        page = (root / guide.file_name(name)).read_text()
        assert f"<h1>{html.escape(guide.title(name))}</h1>" in page
        assert f'href="{guide.file_name(name)}"' in index
        assert ".md" not in re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", page, flags=re.S), f"{name}: a link to Markdown"
        source = (guide.FOLDER / f"{name}.md").read_text()
        assert ("\n|---" in source) <= ("<table>" in page), f"{name}: a table not rendered"


def test_the_link_check_sees_broken_links(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#there">b</a> <a href="#here">a</a> <img src="f.png">'
                                     '<span id="here"></span>')
    (tmp_path / "b.html").write_text('<span id="elsewhere"></span>')
    assert broken_links(tmp_path) == ["a.html -> b.html#there: no such anchor", "a.html -> f.png: no such file"]


def test_conformance_page_shows_each_subject(site):
    """A column per built-in subject; one whose extra is not installed (hf, keras on a newcomer's
    machine) shows why it could not load, and every check of it as not run."""
    from nlpspec.docs.conformance import BUILT_IN
    extras = {"hf": "transformers", "keras": "keras", "onnxruntime": "onnxruntime", "jax": "jax"}
    if os.environ.get("NLPSPEC_REQUIRE_ALL") == "1":
        require(*extras.values())
    loaded = [name for name in BUILT_IN if not missing(*[extras[name]] if name in extras else [])]
    root, _ = site
    text = (root / "conformance.html").read_text()
    assert all(f"<th>{name} " in text for name in BUILT_IN), "a built-in subject missing"
    assert text.count("SubjectLoadError") == len(BUILT_IN) - len(loaded), "a subject that loads shows an error, or one that cannot shows none"
    row = re.search(r"<tr><th><code>layernorm</code></th>(.*?)</tr>", text).group(1)
    cells = re.findall(r'<td class="(\w+)">', row)
    assert len(cells) == len(BUILT_IN) and set(cells) <= {"pass", "variant", "skip"}, row
    assert (">not offered<" in row) == ("hf" in loaded)  # hf has no LayerNorm component of its own
    assert cells.count("pass") == len(set(loaded) - {"hf"}), row
    assert 'href="transformer.html#layernorm"' in row


def test_the_build_runs_the_reports_no_one_gave(tmp_path, monkeypatch):
    """The conformance page is filled without a report: a quick run of each built-in subject that no
    report covers, each column saying where it came from; a subject that cannot load shows its error."""
    from nlpspec.docs import conformance
    from nlpspec.properties import runner
    given = tmp_path / "ci"
    given.mkdir()
    (given / "torch.json").write_text('{"subject": "torch", "version": "2", "device": "cpu", "dtype": "float64", '
                                      '"profile": "ci", "records": []}')
    monkeypatch.setattr(conformance, "REPORTS", given)
    monkeypatch.setattr(conformance, "BUILT_IN", ("torch", "reference", "no_such_subject"))
    full = runner.check_subject
    monkeypatch.setattr(runner, "check_subject", lambda *a, **k: full(*a[:4], components=["layernorm"]))
    reports = conformance.gathered([], tmp_path / "quick", workers=1)  # in this process, as patched
    assert [json.loads(p.read_text())["subject"] for p in reports] == ["torch", "reference", "no_such_subject"]
    text = conformance.page(reports)
    assert "ci profile" in text and "the site&#x27;s quick run (2 examples)" in text
    assert "no_such_subject" in text and "SubjectLoadError" in text
    row = re.search(r"<tr><th><code>layernorm</code></th>(.*?)</tr>", text).group(1)
    assert re.findall(r'<td class="(\w+)">', row) == ["skip", "pass", "skip"], row


def test_every_equation_of_the_article_has_reference_code_that_names_it():
    from nlpspec.docs.catalogue import reference_code
    found = reference_code()
    missing = [eid for eid, entry in CATALOGUE.items() if not getattr(entry, "variant_of", None) and eid not in found]
    assert missing == [], "no reference function's docstring names these E-ids"


def test_every_checked_by_line_selects_every_component_that_checks_the_eid(site):
    """rnn.output's once selected gru.seq2seq alone, of the four components that check it."""
    from nlpspec.properties.suite import COMPONENTS
    root, pages = site
    for page in pages[:4]:
        for eid, body in re.findall(r'<section class="entry" id="([^"]+)">(.*?)</section>', page.read_text(), re.S):
            command = re.search(r"Checked by \(<code>(.*?)</code>\)", body).group(1).replace("&quot;", '"')
            selected = set(re.findall(r"[\w.]+", command.split(" -k ", 1)[1]))
            checking = {c.name for c in COMPONENTS.values() if eid in c.eids or eid in c.variants}
            assert checking <= selected, f"{eid}: {command} leaves out {checking - selected}"


def test_dataflow_nodes_name_a_functions_parameters():
    """LayerNorm's node once read LN_{·,·}: a parameter of a spec function is named in its head."""
    import sympy as sp
    from nlpspec.docs import diagrams
    from nlpspec.spec import Equation
    for eid, eq in CATALOGUE.items():
        if isinstance(eq, Equation):
            for e in eq.expressions:
                for node in sp.preorder_traversal(e):
                    assert r"_{\cdot" not in diagrams.label(node), f"{eid}: {diagrams.label(node)}"


def test_every_heatmap_has_a_colour_bar(tmp_path, monkeypatch):
    from nlpspec.docs import figures
    saved = []
    monkeypatch.setattr(figures, "save", lambda fig, out, name: saved.append((name, fig)) or name)
    for make in (figures.positional_encoding, figures.causal_attention):
        make(tmp_path)
    images = [(name, image) for name, fig in saved for ax in fig.axes for image in ax.images]
    assert images, "no heatmap drawn"
    assert [name for name, image in images if image.colorbar is None] == []


def test_who_implements_an_eid_is_taken_from_the_runs(site):
    """Each E-id names the subjects whose checks of it passed in the reports the page was built from;
    a subject whose check of it failed is not named (for that component and option set)."""
    from nlpspec.docs.catalogue import found_in
    root, _ = site
    section = re.search(r'<section class="entry" id="layernorm">(.*?)</section>', (root / "transformer.html").read_text(),
                        re.S).group(1)
    implemented = re.search(r"<p>Implemented by: (.*?)</p>", section).group(1)
    assert "reference" in implemented and "torch" in implemented, implemented
    record = {"component": "encoder", "eids": ["enc.attn.pre_ln"], "status": "pass", "option_set": "pre_ln"}
    runs = [{"subject": "torch", "version": "2", "records": [record]},
            {"subject": "other", "records": [record | {"status": "fail"}]}]
    assert found_in("enc.attn.pre_ln", runs) == ["torch 2: encoder (pre_ln)"]
    assert found_in("enc.attn", runs) == []


def test_every_section_has_prose_citing_its_equations_and_the_builds_measurements(site):
    from nlpspec.docs import prose
    from nlpspec.docs.catalogue import entries
    root, pages = site
    for page in pages[:4]:
        text = re.search(r'<div class="prose">(.*?)</div>', page.read_text(), re.S).group(1)
        cited = set(re.findall(r'#([\w.]+)"><code>', text))
        own = cited & set(entries(page.stem))
        assert len(own) >= 3, f"{page.name}: the prose cites {sorted(cited)}"
    cells = (root / "recurrent-cells.html").read_text()
    assert re.search(r"‖∂h<sub>T</sub>/∂h<sub>0</sub>‖ is \d\.\de[+-]\d\d", cells), "no measured gradient norm"
    assert re.search(r"RNN layer took [\d.]+ ms", (root / "attention.html").read_text()), "no measured time"
    with pytest.raises(KeyError):
        prose.ref("no.such.eid")


def test_the_quick_runs_share_the_cores(tmp_path, monkeypatch):
    from nlpspec.docs import conformance
    monkeypatch.setattr(conformance, "REPORTS", tmp_path / "none")
    monkeypatch.setattr(conformance, "BUILT_IN", ("no_such_a", "no_such_b"))
    reports = conformance.gathered([], tmp_path / "quick", workers=2)
    found = [json.loads(p.read_text()) for p in reports]
    assert [f["subject"] for f in found] == ["no_such_a", "no_such_b"]
    assert all("SubjectLoadError" in f["error"] for f in found), found
