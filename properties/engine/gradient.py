"""The gradient oracle: the vector-Jacobian product of the spec, under a drawn cotangent, for every
float input and parameter of a case, and the subject's own autograd of the same.

The spec's VJP is autograd through the component's oracle run on torch tensors: the spec's own
compositions, each equation printed by the same printer as the NumPy oracle into torch code
(spec/torch_oracle.py; tests/test_spec.py shows the two printers agree), never reference/'s code.
It is judged by the one tolerance rule (tolerance.py), its baseline the same VJP computed in the
run's dtype (float32, scaled, for float64), its sensitivity the float64 VJP in rounded arithmetic
(every operand of the forward and backward passes rounded once more).
"""
from __future__ import annotations

import numpy as np
import torch

from nlpspec.spec.kernels import EvaluationContext

from . import tolerance as tol
from .trees import as_tensors, leaves, nested_map
from .rounding import FlashSoftmaxProduct, LayerNormClosedForm, RoundedOperands


def spec_vjp(oracle, params, inputs, cotangents: dict, dtype: torch.dtype = torch.float64,
             device="cpu", ties=()) -> dict:
    """{"params.W_Q": ∂⟨cotangents, outputs⟩/∂W_Q, "inputs.q": …} for every float leaf of the case,
    by autograd through `oracle` in `dtype`, as float64 arrays (zeros where an output does not
    depend on the leaf); tied inputs (tied_inputs) summed."""
    case = as_tensors({"params": params, "inputs": inputs}, dtype, device)
    outputs = oracle(case["params"], case["inputs"])
    total = sum((outputs[name] * torch.as_tensor(c, dtype=dtype, device=device)).sum()
                for name, c in cotangents.items())
    wrt = [(path, t) for path, t in leaves(case) if isinstance(t, torch.Tensor)]
    grads = torch.autograd.grad(total, [t for _, t in wrt], allow_unused=True)
    return tied({path: np.zeros(t.shape) if g is None else g.detach().to("cpu", torch.float64).numpy()
                 for (path, t), g in zip(wrt, grads)}, ties)


def tied_inputs(inputs: dict) -> list[tuple]:
    """Groups of float inputs that the case gives the same values (self-attention's query, key and
    value): a subject may read them as one tensor (self-attention only, or a fast path), so only the
    sum of their gradients is defined for every subject."""
    groups: list[list] = []
    for name, a in inputs.items():
        if a.dtype.kind != "f":
            continue
        group = next((g for g in groups if inputs[g[0]].shape == a.shape and np.array_equal(inputs[g[0]], a)), None)
        if group is None:
            groups.append([name])
        else:
            group.append(name)
    return [tuple(g) for g in groups if len(g) > 1]


def tied(grads: dict, ties) -> dict:
    """grads with each group of tied inputs as one entry, "inputs.query=key=value", their sum."""
    grads = dict(grads)
    for group in ties:
        paths = [f"inputs.{name}" for name in group if f"inputs.{name}" in grads]
        if paths:
            grads[f"inputs.{'='.join(group)}"] = sum(grads.pop(p) for p in paths)
    return grads


def rounded_vjp(oracle, params, inputs, cotangents: dict, dtype: torch.dtype, device, seed: int, ties=()) -> dict:
    """One sample of the spec's VJP in rounded arithmetic: float64, every input, parameter and
    cotangent rounded once more (relative and at its array's scale), so is every equation's input on
    the way, and every operand of every operation of the forward and backward passes
    (properties/engine/rounding.py's RoundedOperands), by eps(dtype), random signs from `seed`. Odd
    seeds take the backward passes of fused kernels where they differ from autograd's chain: each
    softmax(S) V's in FlashAttention's form (rounding.FlashSoftmaxProduct), LayerNorm's in its closed
    form (rounding.LayerNormClosedForm); even ones autograd's."""
    rng = np.random.default_rng(seed)
    moved = nested_map(lambda a: tol.perturb(a, dtype, rng) if a.dtype.kind == "f" else a, [params, inputs, cotangents])
    mode = RoundedOperands(tol.eps(dtype), seed)
    fused = {"softmax_product": FlashSoftmaxProduct.apply, "layernorm": LayerNormClosedForm.apply}
    context = EvaluationContext(rounding=mode.equation_input, forms=fused if seed % 2 else {})  # in turn
    with mode:
        return context.run(spec_vjp, oracle, *moved, dtype=torch.float64, device=device, ties=ties)


def tolerances(oracle, params, inputs, cotangents: dict, reference: dict, dtype: torch.dtype, device,
               ties=()) -> dict:
    """The tolerance rule for each leaf's gradient: baseline, the VJP in the run's dtype; sensitivity,
    the VJP in rounded arithmetic, judged on one sample and refined where a subject is outside it
    (Tolerance.final, as the forward's); computed when first read (tolerance.Deferred)."""
    def make():
        baseline = spec_vjp(oracle, params, inputs, cotangents, tol.baseline_dtype(dtype), device, ties)
        samples = tol.Samples(lambda seed: rounded_vjp(oracle, params, inputs, cotangents, dtype, device, seed, ties))
        return tol.bounds(reference, baseline, samples, dtype)
    return tol.Deferred(make, reference, dtype)


def defined_rows(reference: dict, shared: tuple) -> np.ndarray | None:
    """The batch rows on which the spec defines every output (no query without a key): the
    gradient is taken there only, as an undefined row's NaN would reach every entry. None where no
    output has a batch axis."""
    batched = [v for name, v in reference.items() if name not in shared]
    if not batched:
        return None
    return np.logical_and.reduce([~np.isnan(v.reshape(len(v), -1)).any(-1) for v in batched])


def rows_of(tree: dict, rows: np.ndarray, shared: tuple) -> dict:
    return {k: v if k in shared else v[rows] for k, v in tree.items()}
