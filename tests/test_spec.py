"""The spec itself: symbolic facts of the article, the printer, shapes, and the catalogue."""
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpspec.spec import CATALOGUE, Equation, compile_equation
from nlpspec.spec.equation import latex
from nlpspec.spec.functions import Sigmoid
from nlpspec.spec.oracle import ShapeError
from nlpspec.spec.recurrent import (GRU_CANDIDATE, GRU_HIDDEN, GRU_RESET_AFTER, GRU_RESET_AFTER_HIDDEN, LSTM_CELL,
                            UPDATE_KEEPS_STATE, H)

pytestmark = pytest.mark.selftest
EQUATIONS = [e for e in CATALOGUE.values() if isinstance(e, Equation)]
CONCRETE = {H: 2}  # for the symbolic facts of the cells


def sizes(eq, tiny=False) -> dict:
    """The equation's dimensions at distinct sizes, so that a W of H×H meeting an x of I×1
    cannot pass; or, for `.as_explicit()` (which grows fast with size), at 2 and 3 in turn."""
    return {d: (2 + k % 2 if tiny else 2 + k) for k, d in enumerate(eq.dimensions)}


def concrete_shape(sym, eq, tiny=False) -> tuple[int, ...]:
    return tuple(int(sp.sympify(d).subs(sizes(eq, tiny))) for d in sym.shape)


MASKS = {"B_mask": 0, "p": 0, "M_masked": 0, "M_attends": 1}  # mask inputs -> the value that leaves key 0 visible


def sample(name, shape, rng):
    """Random entries; a mask input is 0/1 with key 0 left visible to every query (a row with no
    key visible has no value: the spec leaves it undefined)."""
    if name not in MASKS:
        return rng.standard_normal(shape)
    mask = rng.integers(0, 2, shape).astype(float)
    if name == "p":
        mask[..., 0, :] = MASKS[name]
    else:
        mask[..., 0] = MASKS[name]
    return mask


def symbol(eq, name):
    return next(s for s in (*eq.inputs, eq.lhs) if s.name == name)


def test_sigmoid_of_minus_a_is_one_minus_sigmoid():
    a = sp.Symbol("a", real=True)
    assert sp.simplify(Sigmoid.scalar(-a) - (1 - Sigmoid.scalar(a))) == 0


def test_lstm_highway_passes_the_cell_state_unchanged():
    f, i, C_prev = (symbol(LSTM_CELL, n) for n in ("f", "i", "C_prev"))
    ones, zeros = sp.OneMatrix(H, 1), sp.ZeroMatrix(H, 1)
    rhs = LSTM_CELL.rhs.subs({f: ones, i: zeros}).subs(CONCRETE).as_explicit()
    assert sp.simplify(rhs - C_prev.subs(CONCRETE).as_explicit()) == sp.zeros(CONCRETE[H], 1)


@pytest.mark.parametrize("kind, eq", [("gru", GRU_HIDDEN), ("gru.reset_after", GRU_RESET_AFTER_HIDDEN)])
def test_gru_update_gate_value_that_keeps_the_state(kind, eq):
    z, h_prev = symbol(eq, "z"), symbol(eq, "h_prev")
    keep = sp.OneMatrix(H, 1) if UPDATE_KEEPS_STATE[kind] == 1 else sp.ZeroMatrix(H, 1)
    rhs = eq.rhs.subs(z, keep).subs(CONCRETE).as_explicit()
    assert sp.simplify(rhs - h_prev.subs(CONCRETE).as_explicit()) == sp.zeros(CONCRETE[H], 1)


@settings(max_examples=200, derandomize=True, database=None)
@given(st.lists(st.floats(-3, 3), min_size=13, max_size=13))
def _no_witness(values):
    """Holds while gru.candidate (reset before the product) equals gru.reset_after, relabelled."""
    h, x, r, W_hh, W_hx, b = (np.array(values[0:2])[:, None], np.array(values[2:3])[:, None],
                              np.array(values[3:5])[:, None], np.array(values[5:9]).reshape(2, 2),
                              np.array(values[9:11])[:, None], np.array(values[11:13])[:, None])
    before = compile_equation(GRU_CANDIDATE)(W_h=np.hstack([W_hh, W_hx]), b_h=b, h_prev=h, r=r, x=x)
    after = compile_equation(GRU_RESET_AFTER)(W_in=W_hx, b_in=b, W_hn=W_hh, b_hn=0 * b, h_prev=h, r=r, x=x)
    assert np.allclose(before, after, atol=1e-9)


def test_gru_candidate_and_reset_after_are_different_functions():
    """The natural relabelling (W_in, W_hn the x and h columns of W_h) fails: a witness exists."""
    with pytest.raises(AssertionError):
        _no_witness()


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_printer_agrees_with_sympys_stock_printer_on_explicit_entries(eq):
    """Our batched printer against SymPy's own NumPy printer on the `.as_explicit()` form."""
    rng = np.random.default_rng(0)
    arrays = {s.name: sample(s.name, concrete_shape(s, eq, tiny=True), rng) for s in eq.inputs}
    concrete = [sp.MatrixSymbol(s.name, *concrete_shape(s, eq, tiny=True)) for s in eq.inputs]
    ours = compile_equation(eq)(**arrays)
    for k, rhs in enumerate(eq.expressions):
        explicit = rhs.subs(sizes(eq, tiny=True)).subs(dict(zip(eq.inputs, concrete))).as_explicit()
        stock = sp.lambdify(concrete, explicit, modules="numpy")
        expected = np.asarray(stock(*(arrays[s.name] for s in eq.inputs)), dtype=float)
        np.testing.assert_allclose(ours[k] if isinstance(eq.lhs, tuple) else ours, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_each_equation_runs_batched_at_distinct_sizes_and_rejects_a_wrong_shape(eq):
    def is_parameter(name):
        return name.startswith(("W_", "b_"))
    arrays = {s.name: np.ones(((7,) if not is_parameter(s.name) else ()) + concrete_shape(s, eq)) for s in eq.inputs}
    outputs = compile_equation(eq)(**arrays)
    for target, out in zip(eq.targets, outputs if isinstance(eq.lhs, tuple) else (outputs,)):
        assert out.shape == (7,) + concrete_shape(target, eq)
    for sym in eq.inputs:  # every size another input shares: a mismatch there is an error
        for axis, dim in ((-2, sym.shape[0]), (-1, sym.shape[1])):
            shared = [o for o in eq.inputs if o != sym and sp.sympify(dim).free_symbols & set().union(
                *(sp.sympify(d).free_symbols for d in o.shape))]
            if not shared or dim == 1:
                continue
            shape = list(arrays[sym.name].shape)
            shape[axis] += 1
            with pytest.raises(ShapeError, match=eq.eid.replace(".", r"\.")):
                compile_equation(eq)(**dict(arrays, **{sym.name: np.ones(shape)}))


ARTICLE_EIDS = ["rnn.cell", "rnn.output", "lstm.forget", "lstm.input", "lstm.candidate", "lstm.cell", "lstm.output",
                "lstm.hidden", "gru.reset", "gru.update", "gru.candidate", "gru.hidden"]


def test_catalogue_holds_every_article_eid_with_latex():
    for eid in ARTICLE_EIDS + ["gru.reset_after"]:
        entry = CATALOGUE[eid]
        assert entry.statement and entry.latex.startswith(latex(entry.targets[0]) + " = ")


def test_python_m_spec_prints_the_catalogue():
    done = subprocess.run([sys.executable, "-m", "nlpspec.spec"], capture_output=True, text=True, timeout=60, check=True)
    for eid in ARTICLE_EIDS:
        assert f"\n{eid}\n" in "\n" + done.stdout
    assert r"f_t = \sigma\left(W_{f}" in done.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["float32", "float16"])
@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_oracle_computes_in_its_inputs_dtype(eq, dtype):
    """The same-precision baseline of the tolerance rule must not be lifted to float64 inside."""
    arrays = {s.name: np.ones(concrete_shape(s, eq), dtype=dtype) * 0.5 for s in eq.inputs}
    outputs = compile_equation(eq)(**arrays)
    for out in outputs if isinstance(eq.lhs, tuple) else (outputs,):
        assert out.dtype == dtype


def test_layernorms_printed_definition_is_its_entry():
    """The docs' "where" lines for LN name μ_i, σ²_i and ε; put back, they give `_entry` itself.
    (The other functions print their `_entry` unchanged, so only LN's parts can drift.)"""
    from nlpspec.spec import functions as F
    first, *parts = F.LayerNorm.definition()
    expr = first.rhs
    for part in reversed(parts):  # σ² is stated in terms of μ: put ε and σ² back before μ
        expr = expr.subs(part.lhs, part.rhs)
    ln = F.LayerNorm(F._a, sp.MatrixSymbol("gamma", 1, F._d), sp.MatrixSymbol("beta", 1, F._d))
    concrete = {F._n: 3, F._d: 3}
    assert sp.simplify(expr.subs(concrete).doit() - ln._entry(F._i, F._j).subs(concrete).doit()) == 0


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_the_torch_oracle_agrees_with_the_numpy_oracle_to_float64_rounding(eq):
    """spec/torch_oracle.py runs the same printed code on torch tensors: batched, at distinct sizes."""
    import torch
    from nlpspec.spec.torch_oracle import compile_equation_torch
    rng = np.random.default_rng(1)
    arrays = {s.name: sample(s.name, (3,) + concrete_shape(s, eq), rng) for s in eq.inputs}
    ours = compile_equation(eq)(**arrays)
    found = compile_equation_torch(eq)(**{k: torch.from_numpy(v) for k, v in arrays.items()})
    for a, b in zip(ours if isinstance(eq.lhs, tuple) else (ours,), found if isinstance(eq.lhs, tuple) else (found,)):
        expected = torch.from_numpy(np.asarray(a, dtype=float))
        floor = 8 * np.finfo(float).eps * max(1.0, float(np.nanmax(np.abs(a))))  # the tolerance rule's floor
        torch.testing.assert_close(b, expected, rtol=0, atol=floor, equal_nan=True)


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_the_torch_oracle_has_the_spec_s_derivative(eq):
    """Autograd through the printed spec against finite differences (torch.autograd.gradcheck)."""
    import torch
    from nlpspec.spec.torch_oracle import compile_equation_torch
    rng = np.random.default_rng(2)
    names = [s.name for s in eq.inputs]
    dims = sizes(eq)
    n, m = (next((d for d in dims if d.name == name), None) for name in "nm")
    if n is not None and m is not None:  # n ≤ m: every query sees a key (lower-right causal, n > m, leaves a
        dims[n] = dims[m]                # row undefined, and its NaN reaches the gradient of V through W^T)
    shapes = {s.name: tuple(int(sp.sympify(d).subs(dims)) for d in s.shape) for s in eq.inputs}
    tensors = [torch.from_numpy(sample(s.name, (2,) + shapes[s.name], rng)) for s in eq.inputs]
    floats = [t if name in MASKS else t.requires_grad_() for name, t in zip(names, tensors)]
    fn = compile_equation_torch(eq)

    def outputs(*args):
        out = fn(**dict(zip(names, args)))
        return out if isinstance(eq.lhs, tuple) else (out,)
    assert torch.autograd.gradcheck(outputs, floats)
