"""The oracle side of a check: the exact value of a case, its same-precision baseline and samples of
it in rounded arithmetic, from which the tolerance rule (tolerance.py) makes each output's bound.

Where a case is evaluated, in NumPy on the CPU or in torch on the run's device
(device_oracle.runs_on_device), is chosen in one place (`OracleSide.evaluator`); both evaluators
answer the same three questions. Part of the Harness (harness.py), whose run and oracle it reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from nlpspec.spec.kernels import EvaluationContext

from . import device_oracle
from . import tolerance as tol
from .cases import on_values
from .rounding import Rounded, rounded_arithmetic
from .trees import nested_map


@dataclass(frozen=True)
class InNumPy:
    """The oracle evaluated in NumPy on the CPU."""

    oracle: Callable

    def exact(self, params, inputs) -> dict:
        return self.oracle(params, inputs)

    def in_dtype(self, params, inputs, dtype: torch.dtype) -> dict:
        """The oracle computed in `dtype` (every input cast to it, NumPy's arithmetic in it)."""
        cast = tol.numpy_dtype(dtype)
        return self.oracle(nested_map(on_values(lambda a: a.astype(cast)), params),
                           nested_map(on_values(lambda a: a.astype(cast)), inputs))

    def rounded(self, params, inputs, dtype: torch.dtype, seed: int) -> dict:
        """One sample of the oracle in rounded arithmetic: every input and every intermediate value
        rounded once more by eps(dtype), with random signs drawn from `seed` (rounding.py)."""
        rng = np.random.default_rng(seed)

        def rounded(a):  # one rounding of an input, then rounded arithmetic on it
            return tol.perturb(a, dtype, rng).view(Rounded)
        with rounded_arithmetic(tol.eps(dtype), rng):  # every equation's inputs (the context), every result
            out = EvaluationContext(rounding=rounded).run(self.oracle, nested_map(on_values(rounded), params),
                                                          nested_map(on_values(rounded), inputs))
        return {name: np.asarray(value) for name, value in out.items()}


@dataclass(frozen=True)
class OnDevice:
    """The oracle evaluated in torch on the run's device (device_oracle.py)."""

    oracle: Callable
    device: torch.device

    def exact(self, params, inputs) -> dict:
        return device_oracle.evaluate(self.oracle, params, inputs, torch.float64, self.device)

    def in_dtype(self, params, inputs, dtype: torch.dtype) -> dict:
        return device_oracle.evaluate(self.oracle, params, inputs, dtype, self.device)

    def rounded(self, params, inputs, dtype: torch.dtype, seed: int) -> dict:
        return device_oracle.rounded(self.oracle, params, inputs, dtype, self.device, seed)


class OracleSide:
    """The exact value and the bounds of a case (a part of Harness)."""

    def evaluator(self, params, inputs) -> InNumPy | OnDevice:
        """Where this case's oracle is evaluated: on the run's device past a size, else in NumPy."""
        if device_oracle.runs_on_device(params, inputs, self.run.device):
            return OnDevice(self.oracle, self.run.device)
        return InNumPy(self.oracle)

    def reference(self, params, inputs) -> dict:
        return self.evaluator(params, inputs).exact(params, inputs)

    def tolerances(self, params, inputs, reference: dict) -> dict:
        """The tolerance rule for each output of this case (see properties/engine/tolerance.py): judged on
        one sample of rounded arithmetic, refined where a subject is outside it (Tolerance.final)."""
        return tol.Deferred(lambda: self.bounds(params, inputs, reference), reference, self.run.dtype)

    def bounds(self, params, inputs, reference: dict) -> dict:
        dtype = self.run.dtype
        baseline = self.evaluator(params, inputs).in_dtype(params, inputs, tol.baseline_dtype(dtype))
        return tol.bounds(reference, baseline, tol.Samples(lambda seed: self.rounded_oracle(params, inputs, seed)), dtype)

    def rounded_oracle(self, params, inputs, seed: int) -> dict:
        """One sample of the oracle in rounded arithmetic by eps of the run's dtype (InNumPy.rounded)."""
        return self.evaluator(params, inputs).rounded(params, inputs, self.run.dtype, seed)
