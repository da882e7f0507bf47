"""What a subject's component receives and returns, and what it may declare, read from the suite itself
(the components and one drawn case each), as README's "Writing a subject" table:

    python -m nlpspec.properties.contract
"""
from __future__ import annotations

from hypothesis import Phase, given, settings, strategies as st

from nlpspec.spec.constants import DEFAULTS

from .engine.component import MASK_FORMS, kind_for, recurrent_kinds
from .suite import COMPONENTS


def drawn(component):
    """One case of the component as the article's kind: (params, inputs)."""
    found = []

    @settings(max_examples=1, database=None, deadline=None, derandomize=True, phases=(Phase.generate,))
    @given(data=st.data())
    def draw(data):
        found.append(component.draw(data, kind_for(component)))
    draw()
    return found[0]


def names(tree) -> str:
    return ", ".join(tree) or "none"


def row(component) -> list[str]:
    params, inputs = drawn(component)
    outputs = component.oracle(kind_for(component))(params, inputs)
    optional = [name for name in outputs if name not in component.required]
    variants = [v for v in component.variants if v not in MASK_FORMS]
    if component.recurrent:  # a cell variant is a kind of its own
        variants = [k for k in recurrent_kinds(component.family) if k != component.family]
    if any(v in MASK_FORMS for v in component.variants):
        variants.append("a mask form")
    return [component.name, names(params) if component.has_parameters else "none (`{}`)", names(inputs),
            names(component.required) + (f"; optional: {', '.join(optional)}" if optional else ""),
            names(component.capabilities), ", ".join(component.constants) or "none", ", ".join(variants) or "none"]


HEADER = ["component", "parameters", "inputs", "outputs", "may lack", "constants", "variants"]


def markdown() -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(c)) + " |" for c in COMPONENTS.values()]
    defaults = ", ".join(f"{name} = {float(value):g}" for name, value in DEFAULTS.items())
    return "\n".join(lines) + f"\n\nConstants, unless declared: {defaults}.\n"


if __name__ == "__main__":
    print(markdown(), end="")
