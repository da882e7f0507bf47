"""The case a subject is given: drawn by the component's strategy in the run's dtype, only what the
subject takes (its declared lacks), its absent parameters their identity, masks in its declared
form, as torch tensors on the run's device. Part of the Harness (harness.py), whose state it reads:
run, component, kind, lacks, declaration, mask_form, examples."""
from __future__ import annotations

import numpy as np
import torch

from .absent import identity
from .strategies import at_scale, overflow_at, rounding_at
from .trees import nested_map


def on_values(fn):
    """fn applied to the float arrays of a case; masks (boolean arrays) pass through unchanged."""
    return lambda a: fn(a) if a.dtype.kind == "f" else a


class Cases:
    """Drawing a case and handing it to the subject in its form (a part of Harness)."""

    def draw(self, data, draw=None):
        """A case, rounded to the run's dtype: float64 arrays holding values exact in that dtype; only
        what the subject takes (its declared lacks), its absent parameters their identity (0 or 1).
        `draw`: another way than the component's to draw it (same signature)."""
        draw = draw or self.component.draw
        finfo = torch.finfo(self.run.dtype)
        with overflow_at(float(np.log(finfo.max))), rounding_at(finfo.eps), at_scale(self.run.scale):
            params, inputs = draw(data, self.kind, lacks=self.lacks) if self.component.capabilities else \
                draw(data, self.kind)
        self.examples += 1
        return self.round(self.without_absent(params)), self.round(inputs)

    def without_absent(self, params):
        """params with every parameter the subject declares absent (at any depth, by name) set to its
        identity: 0 for one that is added, 1 for one that multiplies (absent.identity). The names are
        checked at load (declarations.validate)."""
        absent = set(self.declaration.absent)
        if not absent:
            return params

        def left_out(tree):
            if isinstance(tree, dict):
                return {k: np.full_like(v, identity(k)) if k in absent and not isinstance(v, (dict, list))
                        else left_out(v) for k, v in tree.items()}
            if isinstance(tree, list):
                return [left_out(v) for v in tree]
            return tree
        return left_out(params)

    def round(self, tree):
        return nested_map(on_values(lambda a: torch.from_numpy(a).to(self.run.dtype).double().numpy()), tree)

    def tensors(self, tree):
        """Torch tensors on the run's device: values in its dtype, token ids as int64, masks in the
        subject's declared form."""
        return nested_map(lambda a: self.mask(a) if a.dtype == bool else torch.from_numpy(a).to(self.run.device)
                          if a.dtype.kind in "iu" else torch.from_numpy(np.ascontiguousarray(a)).to(
                              device=self.run.device, dtype=self.run.dtype), tree)

    def mask(self, hidden: np.ndarray) -> torch.Tensor:
        """The spec's mask (True: hidden) in the subject's form: additive float (0 or -inf, the
        article's), or booleans, True where hidden (mask.bool_true_masked) or visible (…_attends)."""
        hidden = torch.from_numpy(np.ascontiguousarray(hidden)).to(self.run.device)
        if self.mask_form == "mask.bool_true_masked":
            return hidden
        if self.mask_form == "mask.bool_true_attends":
            return ~hidden
        zero = torch.zeros((), dtype=self.run.dtype, device=self.run.device)
        return torch.where(hidden, zero - torch.inf, zero)
