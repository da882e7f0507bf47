"""The spec itself: symbolic facts of the article, the printer, shapes, and the catalogue."""
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from spec import CATALOGUE, Equation, compile_equation
from spec.equation import latex
from spec.functions import Sigmoid
from spec.oracle import ShapeError
from spec.recurrent import (GRU_CANDIDATE, GRU_HIDDEN, GRU_RESET_AFTER, GRU_RESET_AFTER_HIDDEN, LSTM_CELL, UPDATE_KEEPS_STATE,
                            H, I, V)

pytestmark = pytest.mark.selftest
EQUATIONS = [e for e in CATALOGUE.values() if isinstance(e, Equation)]
CONCRETE = {H: 2, I: 3, V: 4}  # distinct, so that a W of H×H meeting an x of I×1 cannot pass


def entries(expr, **values):
    """The explicit entries of a matrix expression at CONCRETE sizes, after substituting values."""
    explicit = expr.subs(CONCRETE).as_explicit()
    return sp.simplify(explicit.subs({sp.MatrixSymbol(k, *s.shape).subs(CONCRETE): v for k, (s, v) in values.items()}))


def symbol(eq, name):
    return next(s for s in (*eq.inputs, eq.lhs) if s.name == name)


def test_sigmoid_of_minus_a_is_one_minus_sigmoid():
    a = sp.Symbol("a", real=True)
    assert sp.simplify(Sigmoid.scalar(-a) - (1 - Sigmoid.scalar(a))) == 0


def test_lstm_highway_passes_the_cell_state_unchanged():
    f, i, C_prev = (symbol(LSTM_CELL, n) for n in ("f", "i", "C_prev"))
    ones, zeros = sp.OneMatrix(H, 1), sp.ZeroMatrix(H, 1)
    rhs = LSTM_CELL.rhs.subs({f: ones, i: zeros}).subs(CONCRETE).as_explicit()
    assert sp.simplify(rhs - C_prev.subs(CONCRETE).as_explicit()) == sp.zeros(2, 1)


@pytest.mark.parametrize("kind, eq", [("gru", GRU_HIDDEN), ("gru.reset_after", GRU_RESET_AFTER_HIDDEN)])
def test_gru_update_gate_value_that_keeps_the_state(kind, eq):
    z, h_prev = symbol(eq, "z"), symbol(eq, "h_prev")
    keep = sp.OneMatrix(H, 1) if UPDATE_KEEPS_STATE[kind] == 1 else sp.ZeroMatrix(H, 1)
    rhs = eq.rhs.subs(z, keep).subs(CONCRETE).as_explicit()
    assert sp.simplify(rhs - h_prev.subs(CONCRETE).as_explicit()) == sp.zeros(2, 1)


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


def concrete_shape(sym) -> tuple[int, ...]:
    return tuple(int(sp.sympify(d).subs(CONCRETE)) for d in sym.shape)


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_printer_agrees_with_sympys_stock_printer_on_explicit_entries(eq):
    """Our batched printer against SymPy's own NumPy printer on the `.as_explicit()` form."""
    rng = np.random.default_rng(0)
    arrays = {s.name: rng.standard_normal(concrete_shape(s)) for s in eq.inputs}
    concrete = [sp.MatrixSymbol(s.name, *concrete_shape(s)) for s in eq.inputs]
    explicit = eq.rhs.subs(CONCRETE).subs(dict(zip(eq.inputs, concrete))).as_explicit()
    stock = sp.lambdify(concrete, explicit, modules="numpy")
    expected = np.asarray(stock(*(arrays[s.name] for s in eq.inputs)), dtype=float)
    np.testing.assert_allclose(compile_equation(eq)(**arrays), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.eid)
def test_each_equation_runs_batched_at_distinct_sizes_and_rejects_a_wrong_shape(eq):
    def is_parameter(name):
        return name.startswith(("W_", "b_"))
    arrays = {s.name: np.ones(((7,) if not is_parameter(s.name) else ()) + concrete_shape(s)) for s in eq.inputs}
    assert compile_equation(eq)(**arrays).shape == (7,) + concrete_shape(eq.lhs)
    first = eq.inputs[0]
    rows, cols = concrete_shape(first)
    wrong = dict(arrays, **{first.name: np.ones(arrays[first.name].shape[:-2] + (rows + 1, cols))})
    with pytest.raises(ShapeError, match=eq.eid.replace(".", r"\.")):
        compile_equation(eq)(**wrong)


ARTICLE_EIDS = ["rnn.cell", "rnn.output", "lstm.forget", "lstm.input", "lstm.candidate", "lstm.cell", "lstm.output",
                "lstm.hidden", "gru.reset", "gru.update", "gru.candidate", "gru.hidden"]


def test_catalogue_holds_every_article_eid_with_latex():
    for eid in ARTICLE_EIDS + ["gru.reset_after"]:
        entry = CATALOGUE[eid]
        assert entry.statement and entry.latex.startswith(latex(entry.lhs) + " = ")


def test_python_m_spec_prints_the_catalogue():
    done = subprocess.run([sys.executable, "-m", "spec"], capture_output=True, text=True, timeout=60, check=True)
    for eid in ARTICLE_EIDS:
        assert f"\n{eid}\n" in "\n" + done.stdout
    assert r"f_t = \sigma\left(W_{f}" in done.stdout
