"""The documentation site in a real browser (headless Chromium, Debian's chromium and
chromium-driver packages; .ci/run installs them): each page loads without console errors, its
MathML is laid out as math, and its figures load. One screenshot per page is kept in
artefacts/screenshots/.

Without Chromium the test is skipped with the reason, unless NLPSPEC_REQUIRE_ALL=1 (.ci/run),
where a missing browser is a failure (tests/optional.py)."""
import pathlib
import re
import shutil

import pytest

from optional import require

pytestmark = pytest.mark.selftest

SCREENSHOTS = pathlib.Path(__file__).resolve().parent.parent / "artefacts" / "screenshots"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    require("chromium", "chromedriver", "selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1200,900"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


PAGES = ("index", "recurrent-cells", "rnn-architectures", "attention", "transformer", "conformance")

LAYOUT = """
return {
  math: [...document.querySelectorAll('math')].map(m => {
    const r = m.getBoundingClientRect();
    return [m.closest('[id]') ? m.closest('[id]').id : '', getComputedStyle(m).display, r.width, r.height];
  }),
  images: [...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
};
"""


def problems(browser, url: str, screenshot: pathlib.Path | None = None, needs_math: bool = True) -> list[str]:
    """What is wrong with a page in the browser: console errors, MathML not laid out as math,
    figures that did not load."""
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');
        Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
               .then(() => done());""")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(screenshot))
    found = [f"console: {entry['message']}" for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    layout = browser.execute_script(LAYOUT)
    if needs_math and not layout["math"]:
        found.append("no MathML on the page")
    found += [f"MathML in #{where} not laid out as math (display {display}, {w}×{h})"
              for where, display, w, h in layout["math"] if "math" not in display or w <= 0 or h <= 0]
    found += [f"figure {src} did not load" for src, complete, width in layout["images"] if not (complete and width > 0)]
    return found


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(site, browser, page):
    root, _ = site
    found = problems(browser, (root / f"{page}.html").as_uri(), SCREENSHOTS / f"{page}.png",
                     needs_math=page not in ("index", "conformance"))
    assert found == [], f"{page}.html"


def test_the_browser_check_sees_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><head><meta charset="utf-8"><title>broken</title></head><body>'
                    '<section id="e"><math style="display:none"><mi>x</mi></math></section>'
                    '<img src="missing.png"><script>undefined_function()</script></body></html>')
    found = problems(browser, page.as_uri())
    assert any("missing.png" in p and p.startswith("console") for p in found), found
    assert any("undefined_function" in p for p in found), found
    assert any(p.startswith("MathML in #e") for p in found), found
    assert "figure missing.png did not load" in found, found


# The notation: what each page's math says, read in the browser, against the LaTeX beside it and
# against the spec's own objects (the article's notation: summation bounds, indices, constants, shapes).

NOTATION = """
return [...document.querySelectorAll('section.entry')].map(s => ({
  id: s.id,
  math: [...s.querySelectorAll('.equation math')].map(m => m.textContent),
  latex: s.querySelector('details pre').textContent,
  symbols: [...s.querySelectorAll('table.symbols tr')].slice(1).map(r => [...r.cells].map(c => c.textContent)),
  subscripts: [...s.querySelectorAll('msub, msubsup')].map(m => m.children[1] ? m.children[1].textContent : ''),
  fractions: [...s.querySelectorAll('mfrac')].map(f => [...f.children].map(c => c.textContent)),
  checked: [...s.querySelectorAll('p')].filter(p => p.textContent.startsWith('Checked by'))
             .map(p => p.querySelector('code').textContent).join(''),
}));
"""


def latex_text(tex: str) -> str:
    """The text a reader sees in LaTeX (pylatexenc's reading, not the site's converter), as normalized."""
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db
    context = get_default_latex_context_db()
    context.add_context_category("as-mathml-text", prepend=True, macros=[  # MathML draws these, it does not write them
        MacroTextSpec("sqrt", "%(2)s"), MacroTextSpec("frac", "%s%s"), MacroTextSpec("hat", "%s^"),
        MacroTextSpec("tilde", "%s~"), MacroTextSpec("overrightarrow", "%s→"), MacroTextSpec("overleftarrow", "%s←"),
        MacroTextSpec("bmod", "mod"), MacroTextSpec("quad", ""), MacroTextSpec(":", "")])
    return normalized(LatexNodes2Text(latex_context=context, math_mode="verbatim").latex_to_text(tex))


def normalized(text: str) -> str:
    """Symbols in order: no spaces, scripts' markers, braces or invisible operators."""
    for invisible in "\u2061\u2062\u2063":
        text = text.replace(invisible, "")
    return re.sub(r"[\s_^{}/]", "", text.replace("−", "-"))


def summed_axes(eq) -> list:
    """The size of each axis the equation's reductions run over: a column softmax over its rows (rnn.output,
    V), a row softmax over its columns (the m keys of a row of scores), LayerNorm over the features."""
    import sympy as sp
    from nlpspec.spec import functions as F
    axis = {F.Softmax: 0, F.RowSoftmax: 1, F.LayerNorm: 1}
    return [node.args[0].shape[axis[type(node)]] for e in eq.expressions for node in sp.preorder_traversal(e)
            if type(node) in axis]


def notation_problems(sections) -> list[str]:
    """What a section's math says that its LaTeX, or the spec, does not."""
    import sympy as sp
    from nlpspec.properties.suite import COMPONENTS
    from nlpspec.spec import CATALOGUE, Equation
    from nlpspec.spec.equation import latex
    found = []
    for s in sections:
        eid, lines = s["id"], [line.removeprefix("where ") for line in s["latex"].strip().split("\n")]
        if len(s["math"]) != len(lines):
            found.append(f"{eid}: {len(s['math'])} math elements for {len(lines)} lines of LaTeX")
        for math, tex in zip(s["math"], lines):
            if normalized(math) != latex_text(tex):
                found.append(f"{eid}: the MathML reads {normalized(math)!r}, its LaTeX {latex_text(tex)!r}")
        checking = {c.name for c in COMPONENTS.values() if eid in c.eids or eid in c.variants}
        selected = set(re.findall(r"[\w.]+", s.get("checked", "").split(" -k ")[-1]))
        if "checked" in s and not checking <= selected:
            found.append(f"{eid}: {s['checked']!r} leaves out {sorted(checking - selected)}")
        entry = CATALOGUE[eid]
        if not isinstance(entry, Equation):
            continue
        defined = "".join(normalized(m) for m in s["math"][1:])
        for size in summed_axes(entry):
            bound = latex_text(latex(size - 1))
            if "∑k=0" + bound not in defined:
                found.append(f"{eid}: no sum runs to {bound} (the size of the axis it reduces) in {defined!r}")
        found += [f"{eid}: a vector's entry by two indices, one of them 0: {sub!r}"
                  for sub in s["subscripts"] if re.fullmatch(r"0,\w+|\w+,0", sub)]
        found += [f"{eid}: a power of ten as the fraction {a}/{b}" for a, b in s["fractions"]
                  if a == "1" and re.fullmatch(r"10{3,}", b)]
        shapes = {latex_text(latex(sym)): sym.shape for sym in (*entry.targets, *entry.inputs)}
        for symbol, _, shape in s["symbols"]:
            dims = shapes.get(normalized(symbol))
            expected = "×".join(f"({latex_text(latex(d))})" if sp.sympify(d).is_Add else latex_text(latex(d))
                                for d in dims) if dims else None
            if expected is not None and normalized(shape) != expected:
                found.append(f"{eid}: the shape of {normalized(symbol)} reads {normalized(shape)!r}, not {expected!r}")
    return found


@pytest.mark.parametrize("page", PAGES[1:5])
def test_the_math_says_what_its_latex_and_the_spec_say(site, browser, page):
    root, _ = site
    browser.get((root / f"{page}.html").as_uri())
    sections = browser.execute_script(NOTATION)
    assert sections, f"{page}.html has no equations"
    found = notation_problems(sections)
    assert found == [], "\n".join(found)


def test_the_notation_check_sees_each_kind_of_defect():
    """Each defect the site once had, as the browser reads it: sympy's MathML of a block column
    (blockmatrix), h_{−1+t}, a sum to d−1 over m keys, γ_{0,j}, ε = 1/100000, H × H + I."""
    section = {"id": "layernorm", "latex": r"N = \operatorname{LN}_{\gamma, \beta}\left(X\right)" "\n"
               r"where {\operatorname{LN}_{\gamma, \beta}\left(a\right)}_{ij} = {a}_{i,j} {\gamma}_{j}" "\n"
               r"where \varepsilon = 10^{-5}",
               "math": ["N=LNγ,β(X)", "LNγ,β(a)ij=ai,jγ0,j", "ε=1100000"], "symbols": [],
               "subscripts": ["0,j"], "fractions": [["1", "100000"]]}
    found = notation_problems([section])
    assert any("reads 'LNγ,β(a)ij=ai,jγ0,j'" in p for p in found), found
    assert any("no sum runs to dmodel-1" in p for p in found), found
    assert any("two indices" in p for p in found) and any("1/100000" in p for p in found), found
    column = {"id": "lstm.forget", "latex": r"f_t = \sigma\left(W_{f} \left[\begin{matrix}h_{t-1}\\x_t\end{matrix}\right]"
              r" + b_{f}\right)", "math": ["ft=σ(Wfblockmatrix([ht−1;xt])+bf)"], "symbols": [["Wf", "W_f", "H×H+I"]],
              "subscripts": [], "fractions": []}
    found = notation_problems([column])
    assert any("blockmatrix" in p for p in found) and any("'H×(H+I)'" in p for p in found), found
    checked = {"id": "rnn.output", "latex": "y_t", "math": ["yt"], "symbols": [], "subscripts": [], "fractions": [],
               "checked": "pytest --pyargs nlpspec -k gru.seq2seq"}
    assert any("leaves out ['lstm.seq2seq', 'rnn.output', 'rnn.seq2seq']" in p for p in notation_problems([checked]))
    shifted = {"id": "seq.many_to_many", "latex": r"{h}_{t} = \mathrm{cell}{\left({h}_{t - 1},{x}_{t} \right)}",
               "math": ["ht=cell(h−1+t,xt)"], "symbols": [], "subscripts": [], "fractions": []}
    assert notation_problems([shifted]), "h_{−1+t} passed"


def test_the_conformance_page_shows_every_built_in_subject(site, browser):
    """It was empty unless a report was passed by hand: now a column per built-in subject, each cell a
    verdict (or "not offered"), as the browser shows it."""
    from nlpspec.docs.conformance import BUILT_IN
    root, _ = site
    browser.get((root / "conformance.html").as_uri())
    table = browser.execute_script("""
        const t = document.querySelector('table');
        return t ? [...t.rows].map(r => [...r.cells].map(c => c.textContent.trim())) : [];""")
    assert table, "no conformance table"
    heads = [h.split()[0] for h in table[0][1:]]
    assert heads == list(BUILT_IN), heads
    cells = [c for row in table[1:] for c in row[1:]]
    assert cells and all(c for c in cells), "an empty cell"
