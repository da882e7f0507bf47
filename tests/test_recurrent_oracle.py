"""The recurrent oracle's fused form (spec/fused_cells.py) against the article's equations stepped one by
one (spec/architectures.step): the same values to float64 rounding, for every cell, with reversal, padded
rows, stacked bidirectional layers, in NumPy and on torch tensors (values and autograd's gradients), in
the run's dtype; and in an EvaluationContext that rounds, the article's equations themselves."""
import numpy as np
import pytest
import torch

from nlpspec.spec import CATALOGUE
from nlpspec.spec.architectures import layers, unroll
from nlpspec.spec.fused_cells import fused
from nlpspec.spec.kernels import EvaluationContext
from nlpspec.spec.recurrent import CELLS, STATE

pytestmark = pytest.mark.selftest

SHAPES = {  # parameter -> shape in (H, I), as the article's cells name them
    "rnn": {"W_hh": "HH", "W_xh": "HI", "b_h": "H"},
    "lstm": {f"{p}_{g}": "HX" if p == "W" else "H" for g in "fiCo" for p in "Wb"},
    "gru": {f"{p}_{g}": "HX" if p == "W" else "H" for g in "rzh" for p in "Wb"},
    "gru.reset_after": {"W_r": "HX", "b_r": "H", "W_z": "HX", "b_z": "H", "W_in": "HI", "b_in": "H",
                        "W_hn": "HH", "b_hn": "H"},
}
SIZES = [(3, 5, 4, 6), (1, 1, 2, 3), (2, 4, 5, 1)]  # (B, T, H, I): H ≠ I, one step, one input feature


def draw(kind, B, T, H, I, rng, dtype=np.float64):
    size = {"H": H, "I": I, "X": H + I}
    params = {name: rng.uniform(-1, 1, (size[s[0]], size[s[1]] if len(s) == 2 else 1)).astype(dtype)
              for name, s in SHAPES[kind].items()}
    state = {name: rng.uniform(-1, 1, (B, H, 1)).astype(dtype) for name in STATE[kind]}
    return params, rng.uniform(-2, 2, (B, T, I, 1)).astype(dtype), state


def assert_same(got, want):
    """Equal to float64 rounding: the two forms add the same terms in another order."""
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("B, T, H, I", SIZES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_the_fused_form_is_the_articles_steps(kind, B, T, H, I, reverse, padded):
    rng = np.random.default_rng([B, T, H, I, reverse, padded])
    params, xs, state = draw(kind, B, T, H, I, rng)
    lengths = rng.integers(1, T + 1, B) if padded else None
    out, final = unroll(kind, params, xs, state, reverse, lengths)
    want_out, want_final = unroll(kind, params, xs, state, reverse, lengths, fused=False)
    assert_same(out, want_out)
    for name in STATE[kind]:
        assert_same(final[name], want_final[name])


@pytest.mark.parametrize("kind", CELLS)
def test_stacked_bidirectional_layers_fused_are_the_articles(kind):
    rng = np.random.default_rng(7)
    B, T, H, I = 3, 4, 3, 5
    params = [[draw(kind, B, T, H, I if l == 0 else 2 * H, rng)[0] for _ in range(2)] for l in range(2)]
    state0 = [[draw(kind, B, T, H, I, rng)[2] for _ in range(2)] for _ in range(2)]
    xs, lengths = rng.uniform(-2, 2, (B, T, I, 1)), np.array([4, 1, 3])
    out, finals = layers(kind, params, xs, state0, lengths)
    want_out, want_finals = layers(kind, params, xs, state0, lengths, fused=False)
    assert_same(out, want_out)
    for layer, want_layer in zip(finals, want_finals):
        for final, want in zip(layer, want_layer):
            for name in STATE[kind]:
                assert_same(final[name], want[name])


@pytest.mark.parametrize("kind", CELLS)
def test_on_torch_tensors_the_values_and_gradients_are_the_articles(kind):
    rng = np.random.default_rng(11)
    params, xs, state = draw(kind, 3, 4, 4, 5, rng)
    lengths = torch.tensor([4, 2, 1])

    def run(fused):
        p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        out, final = unroll(kind, p, torch.tensor(xs), {k: torch.tensor(v) for k, v in state.items()},
                            lengths=lengths, fused=fused)
        (out.sin().sum() + final["h"].sum()).backward()
        return out.detach(), {k: v.grad for k, v in p.items()}
    (out, grads), (want, want_grads) = run(True), run(False)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-14)
    assert_same(out, unroll(kind, params, xs, state, lengths=lengths.numpy())[0])
    for name in params:
        torch.testing.assert_close(grads[name], want_grads[name], rtol=1e-12, atol=1e-13, msg=name)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_the_fused_form_computes_in_the_inputs_dtype(kind, dtype):
    """A same-precision baseline runs the oracle on inputs cast to the dtype under test."""
    params, xs, state = draw(kind, 2, 3, 4, 5, np.random.default_rng(3), dtype)
    out, final = unroll(kind, params, xs, state)
    assert out.dtype == dtype and all(v.dtype == dtype for v in final.values())
    want, _ = unroll(kind, params, xs, state, fused=False)
    np.testing.assert_allclose(out, want, rtol=0, atol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("kind", CELLS)
def test_within_rounding_the_articles_equations_are_stepped(kind):
    """The tolerance rule's rounding model (EvaluationContext.rounding) rounds the inputs of the article's
    equations: there the oracle runs them, not the fused form, whose equations have other inputs."""
    params, xs, state = draw(kind, 2, 3, 4, 5, np.random.default_rng(5))
    with EvaluationContext(rounding=lambda a: a * (1 + 2.0 ** -20)).applied():
        got, _ = unroll(kind, params, xs, state)
        want, _ = unroll(kind, params, xs, state, fused=False)
    np.testing.assert_array_equal(got, want)


def test_each_gate_is_one_row_block_of_both_products():
    """The derivation finds torch's layout: every gate's pre-activation W[:, H:] x + W[:, :H] h + b is a
    block of the input's product and of the state's; the article's GRU multiplies r ⊙ h_{t-1} itself."""
    gates = {kind: [b.name for b in fused(kind).stacked if b.name.startswith("Z")] for kind in CELLS}
    assert gates == {"rnn": ["Z_0"], "lstm": ["Z_0", "Z_1", "Z_2", "Z_3"], "gru": ["Z_0", "Z_1"],
                     "gru.reset_after": ["Z_0", "Z_1"]}
    assert [name for name, _ in fused("gru").sliced] == ["S_0"]
    assert [b.name for b in fused("gru.reset_after").stacked] == ["Z_0", "Z_1", "R_2"]  # W_hn h_{t-1}: its own block
    assert not any(eid.startswith("fused") or "fused_step" in eid for eid in CATALOGUE)  # the article's stay printed
