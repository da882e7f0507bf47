"""The suite: every family's components, and the one generator of (component, check) pairs that
feeds both pytest and the plain runner (scikit-learn's `_yield_*_checks` style: the generic
checks, then each family's)."""
from __future__ import annotations

from . import attention, generic, recurrent, transformer
from .engine.check import Check
from .engine.component import Component

FAMILIES = (recurrent, attention, transformer)

COMPONENTS: dict[str, Component] = {c.name: c for c in sorted((c for family in FAMILIES for c in family.COMPONENTS),
                                                              key=lambda c: c.name)}


def checks_for(component: Component):
    """The checks that apply to `component`, in a stable order: the gradient last (the costliest,
    and a bug of the forward shows in the checks before it)."""
    yield from generic.yield_checks(component)
    for family in FAMILIES:
        yield from family.yield_checks(component)
    yield generic.GRADIENT


def generate():
    """Every (component, check) pair of the suite, in a stable order: the one generator."""
    for component in COMPONENTS.values():
        for check in checks_for(component):
            yield component, check


def all_checks() -> list[Check]:
    """Every check of the suite once, in the order the generator first yields it."""
    return list({check.name: check for _, check in generate()}.values())
