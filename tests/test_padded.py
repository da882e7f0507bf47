"""Padded recurrent sequences (KIND.layers_padded): the oracle runs each row to its own length, the
reference and torch.nn (packed sequences) pass the padding checks."""
import numpy as np
import pytest
import torch
from hypothesis import settings

from nlpspec.properties.recurrent.components import CELL_PARAMS, layers_oracle
from nlpspec.properties.runner import first_failure
from nlpspec.subjects import load_subject

pytestmark = pytest.mark.selftest
PADDING_CHECKS = ["padded_steps_ignored", "final_is_last_real_step", "backward_starts_at_own_end"]


def lstm_case(B=3, T=4, L=2, D=2, H=3, I=2, lengths=(4, 1, 2)):
    rng = np.random.default_rng(0)
    params = {"layers": [[{k: rng.uniform(-1, 1, shape(H, I if l == 0 else D * H))
                           for k, shape in CELL_PARAMS["lstm"].items()} for _ in range(D)] for l in range(L)]}
    inputs = {"x": rng.uniform(-1, 1, (B, T, I)), "h_prev": rng.uniform(-1, 1, (B, L, D, H)),
              "C_prev": rng.uniform(-1, 1, (B, L, D, H)), "lengths": np.array(lengths)}
    return params, inputs


def test_the_oracle_runs_each_row_to_its_own_length_and_pads_with_zeros():
    """A row of the batch equals that row run alone, cut to its length (float64 matmuls in another
    batching round differently: torch.testing's float64 default, against an error of order 0.1 for a
    row run past its length), and out is exactly 0 past it."""
    params, inputs = lstm_case()
    padded = layers_oracle("lstm")(params, inputs)
    for b, n in enumerate(inputs["lengths"]):
        row = {k: v[b:b + 1, :n] if k == "x" else v[b:b + 1] for k, v in inputs.items() if k != "lengths"}
        alone = layers_oracle("lstm")(params, row)
        torch.testing.assert_close(padded["out"][b, :n], alone["out"][0])
        assert not padded["out"][b, n:].any()
        for name in ("h", "C"):
            torch.testing.assert_close(padded[name][b], alone[name][0])


def test_torch_passes_the_padding_checks():
    """torch's pack_padded_sequence (the reference's run is the suite's own conformance run)."""
    record = first_failure(load_subject("torch"), ["lstm.layers_padded", "gru.layers_padded"],
                           settings.get_profile("ci"), checks=PADDING_CHECKS + ["oracle"])
    assert record is None, record.message
