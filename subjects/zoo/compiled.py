"""A bug of the compiled path alone: a module that branches on torch.compiler.is_compiling() (as
code that picks a fused formula when compiled does) and scales its output wrongly there. The eager
option set runs the reference's layernorm and passes every check; only the option set "compiled"
(subjects/torch_compiled.py: torch.compile, inductor) runs the branch, and its checks catch it."""
from __future__ import annotations

import torch

from ..protocol import Subject
from ..reference import BUILDERS, VERSION
from ..torch_compiled import with_compiled
from .mutant import Mutant

COMPILED_SCALE = 1 + 2 ** -8  # the compiled branch's slip: the output 0.4 % too large


def wrong_when_compiled(build):
    def wrapped(params):
        fn = build(params)

        def call(**inputs):
            out = fn(**inputs)
            return out * COMPILED_SCALE if torch.compiler.is_compiling() else out
        return call
    return wrapped


def compiled_mutant(name: str, component: str) -> Mutant:
    options, builders, declarations = with_compiled({}, {component: wrong_when_compiled(BUILDERS[component])}, {})
    subject = Subject(name=f"zoo.{name}", version=VERSION, builders={**BUILDERS, **builders}, options=options,
                      declarations=declarations)
    return Mutant(subject, "its compiled path alone scales the output by 1 + 2^-8 (a branch on "
                           "torch.compiler.is_compiling())", (component,))


MUTANTS = {"layernorm_wrong_when_compiled": compiled_mutant("layernorm_wrong_when_compiled", "layernorm")}
