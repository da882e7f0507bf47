"""The bounds and overflow cases (issue 24, the missing classes): every softmax of the components is
drawn past exp's overflow in a share of cases, a LayerNorm's squares past float16's overflow; the
mutants that overflow there are caught only by those cases, and a correct float16 LayerNorm passes."""
import numpy as np
import pytest
import torch
from hypothesis import Phase, settings

from nlpspec.properties.engine import tolerance as tol
from nlpspec.properties.runner import check_subject, first_failure
from nlpspec.properties.transformer import components
from nlpspec.subjects.registry import load_subject
from nlpspec.subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest
CI = settings.get_profile("ci")
OVERFLOWING = {"classifier_softmax_overflows": "past exp's overflow=True",
               "dec_softmax_overflows": "past exp's overflow=True",
               "ln_squares_overflow": "past the squares' overflow=True"}


def tame(monkeypatch):
    """No case past an overflow point: what the suite drew before."""
    monkeypatch.setattr(components, "past_overflow", lambda data, scale: None)
    monkeypatch.setattr(components, "past_square_overflow", lambda data: None)


@pytest.mark.parametrize("name", sorted(OVERFLOWING))
def test_an_overflowing_mutant_is_caught_by_the_overflow_cases_only(name, monkeypatch):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, CI, dtype=mutant.dtype)
    assert record is not None and OVERFLOWING[name] in record.message, record and record.message
    tame(monkeypatch)
    assert first_failure(mutant.subject, mutant.components, CI, dtype=mutant.dtype) is None


QUICK = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


@pytest.mark.parametrize("subject", ["torch", "reference"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_layernorm_accumulating_in_float32_passes_past_the_squares_overflow(subject, dtype):
    """torch's LayerNorm and the reference's (float32 accumulation) are right where float16's squares
    overflow: the rule's float16 baseline overflows there and bounds nothing, the sensitivity judges
    (tolerance.baseline_error). The reference squared in float16 until these cases found it."""
    records = [r for r in check_subject(load_subject(subject), "cpu", dtype, QUICK, components=["layernorm"])
               if r.status != "skip"]  # torch's compiled set: its oracle check here, the others the thorough profile's
    assert records and all(r.status == "pass" for r in records), [r.message for r in records if r.status != "pass"]


def test_a_baseline_that_overflowed_inside_bounds_nothing():
    reference = np.array([1.0, -2.0, 7e4])  # the last is beyond float16's range: its inf stays
    baseline = np.array([np.nan, -2.0, np.inf])
    assert tol.baseline_error(baseline[:2], reference[:2], torch.float16) == 0.0
    assert tol.baseline_error(baseline, reference, torch.float16) >= np.finfo(np.float64).max
    assert tol.tolerance(reference[:2], baseline[:2], [reference[:2] + 1e-3], torch.float16).atol < 0.1
