"""A mutant: a subject, the bug it carries, and the components the bug reaches.

Each mutant is the reference adapter's builders with those of the broken components replaced by
small ones that hold the bug; the helpers here are what several mutants share.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..protocol import Subject
from ..reference import BUILDERS, VERSION


@dataclass(frozen=True)
class Mutant:
    subject: Subject
    bug: str
    components: tuple[str, ...]
    scale: bool = False  # its bug shows only at the scale profile's sizes (subjects/zoo/tiled.py)
    dtype: torch.dtype = torch.float64  # the run's dtype it is hunted in (float16: an overflow of float16's)


def mutant(name: str, bug: str, builders: dict, declarations: dict | None = None, scale: bool = False,
           dtype: torch.dtype = torch.float64) -> Mutant:
    """The reference subject with the builders of the broken components replaced by `builders` (and,
    for a bug in what a subject declares, its declarations)."""
    return Mutant(Subject(name=f"zoo.{name}", version=VERSION, builders={**BUILDERS, **builders},
                          declarations=declarations or {}), bug, tuple(builders), scale, dtype)


def zeroed(component: str, *names: str):
    """The reference's builder of `component`, its inputs `names` replaced by zeros: an input ignored."""
    def build(params):
        fn = BUILDERS[component](params)
        return lambda **inputs: fn(**{k: torch.zeros_like(v) if k in names else v for k, v in inputs.items()})
    return build
