"""The oracle and its bounds on torch tensors, on the run's device: the same spec compositions, each
equation printed into torch code (spec/torch_oracle.py), for cases large enough that the device is
faster than NumPy (`ON_DEVICE_PAST`, measured by benchmarks/oracle_device.py).

The values are the oracle's to float64 rounding (tests/test_spec.py); the bound follows the same rule
(tolerance.py): its baseline is the oracle run in the baseline dtype, its sensitivity the float64
oracle in rounded arithmetic, every operand of every operation rounded once more (RoundedOperands, as
the gradient's, without the softmax's extra rounding at the scores' scale, which models a backward
pass), every input and every equation's input changed by one rounding.
"""
from __future__ import annotations

import numpy as np
import torch

from nlpspec.spec.kernels import EvaluationContext

from . import tolerance as tol
from .trees import as_tensors, leaves, nested_map
from .rounding import RoundedOperands

# Float entries (parameters and inputs) past which the oracle runs on the device: where torch on
# that device was faster than NumPy for the case (benchmarks/oracle_device.py, docs/guide/scale.md "The oracle on the device")
ON_DEVICE_PAST = {"cpu": None, "cuda": 2**16}


def runs_on_device(params, inputs, device: torch.device) -> bool:
    """Whether a case's oracle runs on `device` (torch) rather than in NumPy on the CPU."""
    past = ON_DEVICE_PAST.get(device.type, ON_DEVICE_PAST["cuda"])
    if past is None:
        return False
    return sum(a.size for _, a in leaves([params, inputs]) if a.dtype.kind == "f") > past


def evaluate(oracle, params, inputs, dtype: torch.dtype, device) -> dict:
    """The oracle's outputs, computed in `dtype` on `device`, as float64 NumPy arrays."""
    with torch.no_grad():
        case = as_tensors({"params": params, "inputs": inputs}, dtype, device, grad=False)
        out = oracle(case["params"], case["inputs"])
    return {name: value.to("cpu", torch.float64).numpy() for name, value in out.items()}


def rounded(oracle, params, inputs, dtype: torch.dtype, device, seed: int) -> dict:
    """One sample of the float64 oracle in rounded arithmetic by eps(dtype), signs from `seed`."""
    rng = np.random.default_rng(seed)
    moved = nested_map(lambda a: tol.perturb(a, dtype, rng) if a.dtype.kind == "f" else a, [params, inputs])
    mode = RoundedOperands(tol.eps(dtype), seed, softmax_at_scores_scale=False)
    with mode:
        return EvaluationContext(rounding=mode.equation_input).run(evaluate, oracle, *moved, torch.float64, device)
