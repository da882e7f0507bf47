"""A LayerNorm's variance lost to cancellation (E-id layernorm): rows whose common offset is large
against their spread are drawn in a quarter of the cases, sized from the run's dtype
(strategies.past_cancellation), so that a one-pass variance E[x²] - E[x]² in that dtype (Flax's
use_fast_variance) is caught on every seed, while the two-pass ones (torch's, the reference's) pass."""
import numpy as np
import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from nlpspec.properties.engine.strategies import overflow_at, rounding_at
from nlpspec.properties.runner import check_subject, first_failure
from nlpspec.properties.transformer import components
from nlpspec.subjects.registry import load_subject
from nlpspec.subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest
CI = settings.get_profile("ci")
ONE_PASS = MUTANTS["ln_one_pass_variance"]


def test_a_one_pass_variance_is_caught_by_the_cancellation_cases_only(monkeypatch):
    record = first_failure(ONE_PASS.subject, ONE_PASS.components, CI, dtype=torch.float32)
    assert record is not None and "past the variance's cancellation=True" in record.message, record and record.message
    monkeypatch.setattr(components, "past_cancellation", lambda data: None)  # the rows drawn before
    assert first_failure(ONE_PASS.subject, ONE_PASS.components, CI, dtype=torch.float32) is None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_one_pass_variance_in_a_half_dtype_is_caught_by_the_cancellation_cases(dtype):
    record = first_failure(ONE_PASS.subject, ONE_PASS.components, CI, dtype=dtype)
    assert record is not None and "past the variance's cancellation=True" in record.message, record and record.message


QUICK = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


@pytest.mark.parametrize("subject", ["torch", "reference"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_two_pass_layernorm_passes_the_cancellation_cases(subject, dtype):
    """float16 and bfloat16: tests/test_overflow.py's run of the same subjects."""
    records = [r for r in check_subject(load_subject(subject), "cpu", dtype, QUICK, components=["layernorm"])
               if r.status != "skip"]
    assert records and all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]


def one_pass_error(x: np.ndarray, dtype) -> np.ndarray:
    """Per row, |σ² as E[x²] - E[x]² computed in `dtype` (NumPy's) - σ²| / σ²."""
    a = x.astype(dtype)
    fast = (a * a).mean(-1).astype(np.float64) - a.mean(-1).astype(np.float64) ** 2
    exact = x.var(-1)
    return np.abs(fast - exact) / exact


def drawn_past_cancellation(dtype, monkeypatch) -> list:
    """The inputs x (rounded to dtype) of the cases drawn past the cancellation, of 80 drawn."""
    finfo, flags, found = torch.finfo(dtype), [], []
    drawn = components.past_cancellation
    monkeypatch.setattr(components, "past_cancellation", lambda data: flags.append(drawn(data)) or flags[-1])

    @settings(max_examples=80, derandomize=True, database=None, deadline=None)
    @given(st.data())
    def draw(data):
        flags.clear()
        with overflow_at(float(np.log(finfo.max))), rounding_at(finfo.eps):
            _, inputs = components.draw_layernorm(data, ())
        if flags and flags[-1] is not None:
            found.append(torch.from_numpy(inputs["x"]).to(dtype).double().numpy())  # as the harness rounds it
    draw()
    return found


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_the_drawn_rows_are_where_a_one_pass_variance_loses_its_bits(dtype, monkeypatch):
    """On the cases drawn past the cancellation, the one-pass variance in the run's dtype is off by
    σ² or more on a row of most cases, while σ² stays far above ε (1e-5) and a row's spread holds
    many roundings of the dtype at its offset (in most rows: two close features of a row of two
    have a small spread in any case)."""
    numpy_dtype = {torch.float32: np.float32, torch.float16: np.float16}[dtype]
    cases = drawn_past_cancellation(dtype, monkeypatch)
    assert len(cases) >= 5
    rows = [x.reshape(-1, x.shape[-1]) for x in cases]
    spread = [r[r.var(-1) > 0] for r in rows]
    with np.errstate(all="ignore"):
        lost = [one_pass_error(r, numpy_dtype).max() for r in spread if len(r)]
    assert np.median(lost) >= 1
    assert np.median([np.median(r.var(-1)) for r in spread if len(r)]) > 1e3 * 1e-5
    ulps = [(np.ptp(r, -1) / (torch.finfo(dtype).eps * np.abs(r).max(-1))).min() for r in spread if len(r)]
    assert np.median(ulps) >= 8


def test_no_cancellation_rows_in_float64(monkeypatch):
    assert drawn_past_cancellation(torch.float64, monkeypatch) == []


# --- the diagnosis: a loss of precision by cancellation, named as such (mistakes.one_pass_variance) ---
CANCELLATION = "one-pass variance E[x²] - E[x]² computed in"


def oracle_failure(subject, dtype):
    found = [r for r in check_subject(subject, "cpu", dtype, QUICK, components=["layernorm"], checks=["oracle"])
             if r.status == "fail"]
    return found[0] if found else None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_one_pass_variance_is_named_a_loss_of_precision_by_cancellation(dtype):
    record = oracle_failure(ONE_PASS.subject, dtype)
    assert record is not None and record.failures[0]["kind"] == "precision", record and record.message
    assert f"precision: its error is what LayerNorm's {CANCELLATION} {str(dtype)[6:]} makes" in record.message
    assert "not another equation" in record.message and "different function" not in record.message


def test_an_unbiased_variance_on_the_cancellation_rows_is_not_called_cancellation(monkeypatch):
    """Every case drawn past the cancellation, and the one-pass variance the only mistake the diagnosis
    may name: the unbiased variance's error on such a row is of the size of the one-pass's, but on the
    rows of small offset it is wrong and the one-pass is not."""
    from nlpspec.properties.engine import diagnosis, mistakes, strategies
    monkeypatch.setattr(components, "past_cancellation", lambda data: 2 / np.sqrt(strategies._EPS.get()))
    monkeypatch.setattr(diagnosis, "MISTAKES", tuple(m for m in mistakes.CATALOGUE if m.in_dtype is not None))
    record = oracle_failure(MUTANTS["ln_unbiased_variance"].subject, torch.float32)
    assert record is not None and "offset" in record.message, record and record.message
    assert CANCELLATION not in record.message and record.failures[0]["kind"] == "value", record.message


def test_a_two_pass_layernorm_does_not_lose_what_the_one_pass_loses():
    """The comparison that names the mistake (diagnosis.lost_alike), on a row past the cancellation in
    float32: the spec's own two-pass LayerNorm computed in float32 does not match it, the one-pass
    computed in another order (E[x]² from the sum) does."""
    from nlpspec.properties.engine import diagnosis
    from nlpspec.properties.engine import tolerance as tol
    from nlpspec.properties.engine.mistakes import one_pass_variance
    x = np.array([[[2900.0, 2901.5, 2899.25, 2900.75]]], np.float32).astype(np.float64)
    params = {"gamma": np.ones(4), "beta": np.zeros(4)}
    exact = components.layernorm_oracle(())(params, {"x": x})["out"]
    one_pass = one_pass_variance(params, {"x": x}, torch.float32)["out"]
    bound = tol.output_rounding(exact, torch.float32)
    assert not diagnosis.within(one_pass, exact, bound)  # the row shows the cancellation
    a = x.astype(np.float32)
    two_pass = ((a - a.mean(-1, keepdims=True)) / np.sqrt(((a - a.mean(-1, keepdims=True)) ** 2).mean(-1, keepdims=True)
                                                           + np.float32(1e-5))).astype(np.float64)
    assert diagnosis.lost_alike(two_pass, one_pass, exact, bound) is False
    s = a.sum(-1, keepdims=True) / np.float32(4)
    other_order = ((a - s) / np.sqrt(np.maximum((a * a).sum(-1, keepdims=True) / np.float32(4) - s * s, 0)
                                     + np.float32(1e-5))).astype(np.float64)
    assert diagnosis.lost_alike(other_order, one_pass, exact, bound) is True
