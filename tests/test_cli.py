"""The nlpspec command (`python -m nlpspec`, the `nlpspec` script): `list` and `contract` print every
component's shapes as the article writes them, an unknown component is a one-line usage error (exit 2),
`site` without the docs packages is one line (exit 1); and the contract's shapes are the drawn cases'."""
import contextlib
import io
import re
import subprocess
import sys

import numpy as np
import pytest

import nlpspec
from nlpspec.cli import main
from nlpspec.properties import contract, drawn_shapes, shape_listing
from nlpspec.properties.engine.component import kind_for
from nlpspec.properties.suite import COMPONENTS

pytestmark = pytest.mark.selftest


def run(*args):
    """`python -m nlpspec ARGS` in a fresh process: the entry point itself (its exit code, its streams)."""
    return subprocess.run([sys.executable, "-m", "nlpspec", *args], capture_output=True, text=True, timeout=120)


def command(*args) -> subprocess.CompletedProcess:
    """`nlpspec ARGS` through cli.main in this process, as `python -m nlpspec` calls it (test_version_and_help
    runs the entry point): its exit code and what it printed, without a new process's start-up."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's usage errors, --help, --version
            code = exc.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def listed():
    done = command("list")
    assert done.returncode == 0, done.stderr
    return done.stdout


def block(text: str, name: str) -> str:
    """One component's block of `nlpspec list`."""
    found = re.search(rf"^{re.escape(name)}  \[.*?(?=\n\n)", text, re.S | re.M)
    assert found, f"{name} has no block"
    return " ".join(found.group(0).split())  # unwrapped


def test_list_shows_every_component_of_the_suite(listed):
    headers = re.findall(r"^(\S+)  \[", listed, re.M)
    assert headers == list(COMPONENTS)


def test_list_prints_the_article_s_shapes(listed):
    lstm = block(listed, "lstm.cell")
    # W_f acts on the column [h_{t-1}; x_t]: H rows, H + I columns; a bias per hidden unit
    assert "W_f (H, H + I)" in lstm and "b_f (H,)" in lstm and "x (B, I), h_prev (B, H), C_prev (B, H)" in lstm
    mha = block(listed, "mha")
    # one W_Q per head, stacked on a first axis, each mapping d_model to d_k
    assert "W_Q (h, d_model, d_k)" in mha and "W_O (d_model, d_model)" in mha
    assert "query (B, n, d_model)" in mha and "attn_mask (n, m) mask" in mha and "key_padding_mask (B, m) mask" in mha
    assert "weights (B, h, n, m)" in mha
    layers = block(listed, "lstm.layers")
    # layer l > 0 reads both directions' states: D·H inputs
    assert "layers[l][d]: lstm.cell's parameters for l = 0, lstm.cell's parameters with I = D·H for l ≥ 1" in layers
    assert "out (B, T, D·H)" in layers and "l < L, d < D" in layers
    assert "src (B, n) int64" in block(listed, "transformer")
    assert "gru.reset_after (parameters: − W_h, − b_h, + W_in (H, I)" in block(listed, "gru.cell")


def test_list_shows_the_profiles_and_the_subjects(listed):
    profiles = listed[listed.index("Hypothesis profiles"):]
    for name, examples in (("dev", 25), ("ci", 50), ("thorough", 500), ("scale", 5)):
        assert re.search(rf"^  {name} +{examples} examples per check", profiles, re.M), name
    subjects = listed[listed.index("Built-in subjects"):]
    for name in ("reference", "torch", "hf", "keras", "zoo.lstm_gates_swapped"):
        assert name in subjects
    assert "'nlpspec[hf]'" in subjects


def test_contract_of_mha():
    done = command("contract", "mha")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for line in ("W_Q (h, d_model, d_k)", "W_K (h, d_kin, d_k)", "b_O (d_model,)", "query (B, n, d_model)",
                 "key (B, m, d_kin)", "out (B, n, d_model)", "d_model model width = h·d_k"):
        assert re.search(rf"^  {re.escape(line)}", out, re.M), line
    assert "mask.bool_true_masked" in out and "additive float" in out
    assert re.search(r"^  one_head: .*\n +\[mha\.head, mha\.output\] \(needs attention\)", out, re.M)
    assert "lacks='key_padding'" in out


def test_an_unknown_component_is_a_one_line_usage_error():
    done = command("contract", "lstm")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "'lstm'" in done.stderr and "lstm.cell" in done.stderr


def test_version_and_help():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"nlpspec {nlpspec.__version__}"
    done = run("--help")
    assert done.returncode == 0 and "exit codes" in done.stdout and "  2  a usage error" in done.stdout


def test_site_without_the_docs_packages_says_what_to_install(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m.split(".")[0] == "latex2mathml" or m.startswith("nlpspec.docs")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, without latex2mathml, and put back after
    monkeypatch.setattr(nlpspec, "docs", getattr(nlpspec, "docs", None), raising=False)
    monkeypatch.setitem(sys.modules, "latex2mathml", None)
    done = command("site", "--out", str(tmp_path / "site"), "--no-quick")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines() == ["nlpspec site: latex2mathml is not installed: pip install 'nlpspec[docs]'"]


def test_site_names_a_missing_report_in_one_line(tmp_path):
    done = command("site", "--report", str(tmp_path / "none.json"), "--out", str(tmp_path / "site"))
    assert done.returncode == 2 and done.stderr.splitlines() == [f"nlpspec site: error: no such report: {tmp_path / 'none.json'}"]
    assert not (tmp_path / "site").exists()


def test_spec_prints_a_sum_in_parentheses():
    done = subprocess.run([sys.executable, "-m", "nlpspec.spec"], capture_output=True, text=True, timeout=120)
    assert "W_f: H × (H + I)" in done.stdout and "W_hh: H × H" in done.stdout


def test_spec_and_site_write_shapes_by_one_rule():
    pytest.importorskip("latex2mathml")
    from nlpspec.docs.mathml import shape_latex
    from nlpspec.spec import CATALOGUE, Equation
    from nlpspec.spec.__main__ import shape_text
    from nlpspec.spec.equation import latex
    shapes = [shape for entry in CATALOGUE.values() if isinstance(entry, Equation) for shape in entry.shapes.values()]
    assert any(shape_text(shape) == "H × (H + I)" for shape in shapes)
    for shape in shapes:
        assert shape_text(shape, latex, r" \times ", (r"\left(", r"\right)")) == shape_latex(shape)


# --- the contract's shapes against drawn cases --------------------------------------------------------
def sizes_of(text: str, sizes: dict) -> int:
    """The size an expression of the contract names, at these sizes (d_model = h·d_k where drawn so)."""
    names = dict(sizes) | ({"d_model": sizes["h"] * sizes["d_k"]} if "d_model" not in sizes and "h" in sizes else {})
    names |= {"d_model": 2 * sizes["pairs"]} if "pairs" in sizes else {}
    names |= {"d_model": sizes["d"]} if "d" in sizes else {}
    return eval(text.replace("·", "*"), {}, names)


def matches(tree, node, sizes, where=""):
    if isinstance(node, dict):
        assert set(tree) == set(node), where
        for key in node:
            matches(tree[key], node[key], sizes, f"{where}.{key}")
    elif isinstance(node, drawn_shapes.Listed):
        assert len(tree) == sizes_of(node.length, sizes), where
        starts = [start for start, _ in node.groups] + [len(tree)]
        for (start, element), end in zip(node.groups, starts[1:]):
            for item in tree[start:end]:
                matches(item, element, sizes, f"{where}[{start}…]")
    else:
        array = np.asarray(tree)
        assert array.shape == tuple(sizes_of(d, sizes) for d in node.dims), where
        assert {"mask": "b", "int64": "i", "float": "f"}[node.dtype] == array.dtype.kind, where


@pytest.mark.parametrize("name", ["mha", "lstm.layers", "gru.seq2seq", "pe", "transformer", "attention"])
def test_the_contract_holds_for_a_case_of_other_sizes(name):
    """A case drawn at sizes none of the three the contract was read from (each size one more prime)."""
    component = COMPONENTS[name]
    found = contract.contract(name)
    other = (4, 6, 3, 5, 2, 7, 4, 3, 6, 5, 2, 4)
    sizes = {}
    params, inputs, outputs, drawn = drawn_shapes.draw_at(component, kind_for(component),
                                                          lambda label, high: sizes.setdefault(label, other[len(sizes)]))
    assert drawn == sizes
    for part, tree in (("parameters", params), ("inputs", inputs), ("outputs", outputs)):
        matches(tree, found.case[part], sizes, part)


def test_every_component_s_shapes_are_named():
    for name in COMPONENTS:
        found = contract.contract(name)
        for part in found.case.values():
            for path, _, text in shape_listing.flat(part):
                assert not re.search(r"\b\d+\b", text), f"{name} {path}: {text}"
        assert set(found.dimensions()) <= set(drawn_shapes.DIMENSIONS)
