"""JAX and Flax as a subject (subjects/jax_flax.py; its conformance run, `--subject jax`, is .ci/run's): the
gradient check reaches JAX's own derivatives (jax.vjp), jax.nn.dot_product_attention's float32 softmax
is a precision shortfall in a float64 run (what the subject declares), and Flax's default LayerNorm
(E[x²] - E[x]²) is caught on fixed draws. Runs where `nlpspec[jax]` is installed (CI installs it)."""
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

from nlpspec.properties.runner import check_subject
from nlpspec.subjects import load_subject

from optional import require
from quick import QUICK, quick

require("jax")
require("flax")
pytestmark = pytest.mark.selftest


@pytest.fixture(scope="module")
def jax_subject():
    return load_subject("jax")


def records(subject, component, dtype, checks=("oracle",), examples=QUICK):
    return check_subject(subject, "cpu", dtype, examples, components=[component], checks=list(checks))


def test_the_gradient_is_jaxs_own():
    """The bridge's backward is jax.vjp's: a JAX function whose custom VJP doubles the gradient fails
    the gradient check and passes the oracle check."""
    import jax
    import jax.numpy as jnp

    from nlpspec.subjects.jax_flax import call

    @jax.custom_vjp
    def tanh(a):
        return jnp.tanh(a)
    tanh.defvjp(lambda a: (jnp.tanh(a), a), lambda a, g: (2 * g * (1 - jnp.tanh(a) ** 2),))

    def cell(W_hh, W_xh, b_h, x, h_prev):
        return (tanh(h_prev @ W_hh.T + x @ W_xh.T + b_h),)

    def builder(params):
        return lambda x, h_prev: {"h": call(cell, params["W_hh"], params["W_xh"], params["b_h"], x, h_prev)[0]}

    from nlpspec.subjects.protocol import Subject
    doubled = Subject("doubled_backward", builders={"rnn.cell": builder})
    found = {r.check: r for r in records(doubled, "rnn.cell", torch.float64, ("oracle", "gradient"))}
    assert found["oracle"].status == "pass", found["oracle"].message
    assert found["gradient"].status == "fail" and "gradient" in found["gradient"].message


def test_dot_product_attention_in_a_float64_run_is_a_precision_shortfall(jax_subject):
    """jax.nn.dot_product_attention takes its softmax in float32: what its declaration says."""
    assert {r.status for r in records(jax_subject, "attention", torch.float64)} == {"skip"}
    undeclared = replace(jax_subject, declarations={**jax_subject.declarations, "attention": lambda options: replace(
        jax_subject.declarations["attention"](options), dtypes=None)})
    found = records(undeclared, "attention", torch.float64)
    assert found and all(r.status == "fail" and "precision: the subject computes in float32" in r.message
                         for r in found), [r.message for r in found]


def test_flax_mha_without_its_fused_path_runs_in_float64(jax_subject):
    """sow_weights=True takes flax's own attention weights, in the run's dtype: float64 passes."""
    found = [r for r in records(jax_subject, "mha", torch.float64) if r.options.get("path") == "weights"]
    assert found and all(r.status == "pass" for r in found), [r.message for r in found]


def test_flax_default_layernorm_is_caught_where_its_variance_cancels(jax_subject):
    """Flax's default LayerNorm (use_fast_variance=True: E[x²] - E[x]²) loses the variance to
    cancellation where a row's mean is large against its spread; the suite fails it on fixed draws,
    and passes the two-pass form on the same draws."""
    many = quick(400)
    fast = replace(jax_subject, builders={**jax_subject.builders, "layernorm": partial(
        jax_subject.builders["layernorm"], variance="fast_variance")})
    caught = records(fast, "layernorm", torch.float32, examples=many)
    assert caught and all(r.status == "fail" for r in caught), [r.message for r in caught]
    assert all(r.status == "pass" for r in records(jax_subject, "layernorm", torch.float32, examples=many))


def test_flax_default_layernorm_by_hand():
    """The finding's standalone repro: x = [1000, 1000.001] in float32."""
    import jax.numpy as jnp
    from flax import nnx
    x = np.array([[1000.0, 1000.001]], np.float32)
    exact = (x.astype(np.float64) - x.astype(np.float64).mean()) / np.sqrt(x.astype(np.float64).var() + 1e-6)
    fast, two_pass = (np.asarray(nnx.LayerNorm(2, epsilon=1e-6, use_fast_variance=f, rngs=nnx.Rngs(0))(jnp.asarray(x)))
                      for f in (True, False))
    assert np.allclose(two_pass, exact, rtol=1e-5)
    assert abs(fast[0, 1] / exact[0, 1] - 1) > 0.1  # 0.48828 against 0.43877
