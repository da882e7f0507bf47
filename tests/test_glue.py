"""The adapters' glue (subjects/glue.py) computes the spec's products in the libraries' layouts."""
import pytest
import torch

from nlpspec.subjects import glue

pytestmark = pytest.mark.selftest
gen = torch.Generator().manual_seed(0)


def randn(*shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def test_a_split_bias_sums_to_the_bias_exactly_and_neither_half_is_zero():
    b = randn(1000)
    first, second = glue.split_bias(b)
    assert torch.equal(first + second, b) and (first != 0).all() and (second != 0).all()


def test_per_head_weights_in_a_linear_and_in_one_right_acting_matrix_give_the_heads_side_by_side():
    W, X = randn(3, 5, 2), randn(4, 5)  # h = 3 heads, d_in = 5, d = 2
    heads = torch.cat([X @ W[k] for k in range(3)], dim=-1)
    torch.testing.assert_close(torch.nn.functional.linear(X, glue.per_head_rows(W)), heads)
    torch.testing.assert_close(X @ glue.stack_heads(W), heads)


def test_gate_rows_split_a_gate_acting_on_h_then_x():
    H, I = 3, 2
    gates, h, x = [randn(H, H + I) for _ in range(4)], randn(5, H), randn(5, I)
    W_ih, W_hh = glue.gate_rows(gates, H)
    torch.testing.assert_close(x @ W_ih.T + h @ W_hh.T, torch.cat([torch.cat([h, x], -1) @ W.T for W in gates], -1))


def test_mask_layouts_agree_on_where_a_query_may_attend():
    attn_mask = torch.tensor([[False, True], [False, False]])  # True: hidden
    key_padding = torch.tensor([[False, False], [True, False]])
    attends = glue.may_attend(attn_mask, key_padding)
    assert attends.tolist() == [[[True, False], [True, True]], [[False, False], [False, True]]]
    assert glue.additive(attends, torch.float32)[0].tolist() == [[0.0, -float("inf")], [0.0, 0.0]]
    assert glue.kept_tokens(key_padding).tolist() == [[1, 1], [0, 1]]
