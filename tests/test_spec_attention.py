"""Symbolic facts of §3–4 that the article relies on, proved with SymPy on the spec's objects."""
import pytest
import sympy as sp
from sympy import stats

from nlpspec.spec.functions import RowSoftmax
from nlpspec.spec.positional import PositionalEncoding

pytestmark = pytest.mark.selftest
D = 6  # an embedding size for the positional facts: three column pairs
i, k = sp.symbols("i k", integer=True, nonnegative=True)


def P(row, col):
    """Entry (row, col) of the spec's P, for a d = D embedding."""
    return PositionalEncoding(sp.MatrixSymbol("X", i + k + 1, D))._entry(row, col)


@pytest.mark.parametrize("pair", range(D // 2))
def test_each_column_pair_lies_on_the_unit_circle(pair):
    assert sp.simplify(P(i, 2 * pair) ** 2 + P(i, 2 * pair + 1) ** 2) == 1


@pytest.mark.parametrize("pair", range(D // 2))
def test_shifting_the_position_rotates_each_pair_by_an_angle_that_depends_on_the_shift_only(pair):
    """P[i+k] = R(k) P[i] on each column pair: the property the paper gives for relative positions."""
    angle = P(k, 2 * pair).args[0]  # sin(k ω_j): its argument is k ω_j
    rotation = sp.Matrix([[sp.cos(angle), sp.sin(angle)], [-sp.sin(angle), sp.cos(angle)]])
    now = sp.Matrix([P(i, 2 * pair), P(i, 2 * pair + 1)])
    later = sp.Matrix([P(i + k, 2 * pair), P(i + k, 2 * pair + 1)])
    assert sp.simplify(sp.expand_trig(later - rotation * now)) == sp.zeros(2, 1)
    assert not (rotation.free_symbols & {i})


def test_softmax_is_unchanged_by_a_constant_added_to_a_row():
    a, c = sp.MatrixSymbol("a", 2, 3), sp.Symbol("c", real=True)
    shifted = sp.Matrix(2, 3, lambda r, col: a[r, col] + c)
    difference = RowSoftmax(a).as_explicit() - RowSoftmax(sp.ImmutableMatrix(shifted)).as_explicit()
    assert sp.simplify(difference) == sp.zeros(2, 3)


@pytest.mark.parametrize("d_k", [1, 2, 3])
def test_dot_product_of_unit_variance_entries_has_variance_d_k(d_k):
    """Why the score is divided by √d_k: q·k of independent N(0, 1) entries has variance d_k."""
    q = [stats.Normal(f"q{j}", 0, 1) for j in range(d_k)]
    key = [stats.Normal(f"k{j}", 0, 1) for j in range(d_k)]
    assert sp.simplify(stats.variance(sum(a * b for a, b in zip(q, key)))) == d_k


def test_oracle_p_matches_the_formula_at_the_articles_size():
    """The compiled P at the article's 2048 positions × 512 columns, against the formula typed
    out independently, and bounded by 1."""
    import numpy as np

    from nlpspec.spec import compile_equation
    from nlpspec.spec.positional import PE_INPUT

    P = compile_equation(PE_INPUT)(X=np.zeros((2048, 512)))
    position, pair = np.meshgrid(np.arange(2048), np.arange(256), indexing="ij")
    angle = position / 10000.0 ** (2 * pair / 512)
    np.testing.assert_allclose(P[:, 0::2], np.sin(angle), rtol=0, atol=1e-12)
    np.testing.assert_allclose(P[:, 1::2], np.cos(angle), rtol=0, atol=1e-12)
    assert np.abs(P).max() <= 1


@pytest.mark.parametrize("lower_right", [False, True], ids=["upper_left", "lower_right"])
@pytest.mark.parametrize("n, m", [(1, 1), (4, 4), (3, 5), (5, 3)])
def test_the_sliding_window_shows_query_i_the_w_keys_up_to_its_own(n, m, lower_right):
    """mask.sliding_window hides all but keys i - w < j <= i (i + m - n lower right), for every w from 1 to
    past the sequence; from w = max(n, m) on it is mask.causal (of that alignment)."""
    import numpy as np

    from nlpspec.spec.attention import hidden_keys
    rows, cols = np.indices((n, m))
    last = rows + (m - n if lower_right else 0)  # the key query i is aligned with
    causal = hidden_keys(n, m, causal=True, lower_right=lower_right)
    for w in range(1, max(n, m) + 2):
        hidden = hidden_keys(n, m, causal=True, lower_right=lower_right, window=w)
        assert (hidden == ~((last - w < cols) & (cols <= last))).all(), w
    assert (hidden_keys(n, m, causal=True, lower_right=lower_right, window=max(n, m)) == causal).all()


def test_the_sliding_window_equation_reads_the_window_in_force_in_numpy_and_torch():
    """The compiled equation (NumPy, and the same printed code on torch tensors) reads mask.window when it
    runs: under a window of 2 it is attention under the given mask of those hidden keys."""
    import numpy as np
    import torch

    from nlpspec.spec import attention as spec
    from nlpspec.spec.constants import in_force
    from nlpspec.spec.oracle import compile_equation
    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((2, 4, 3)) for _ in range(3))
    given = compile_equation(spec.MASK_GIVEN)(Q=Q, K=K, V=V, B_mask=spec.hidden_keys(4, 4, causal=True, window=2))
    with in_force({"mask.window": 2}):
        windowed = compile_equation(spec.SLIDING_WINDOW)(Q=Q, K=K, V=V)
        on_torch = compile_equation(spec.SLIDING_WINDOW)(**{k: torch.from_numpy(a) for k, a in
                                                            {"Q": Q, "K": K, "V": V}.items()})
    np.testing.assert_allclose(windowed, given, rtol=0, atol=1e-15)
    np.testing.assert_allclose(on_torch.numpy(), given, rtol=0, atol=1e-15)
    assert not np.allclose(windowed, compile_equation(spec.MASK_CAUSAL)(Q=Q, K=K, V=V))
