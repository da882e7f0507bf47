"""What a subject's component receives and returns, with every tensor's shape, and what it may
declare, read from the suite itself (its components, their checks and drawn cases): README's
"Writing a subject" table and shapes, and what `nlpspec list` / `nlpspec contract NAME` print.

    python -m nlpspec.properties.contract

The shapes are found by drawing cases (drawn_shapes.py) and written in words by shape_listing.py;
here they are a component's `Contract` (its case and its variants') and README's table.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from nlpspec.spec.constants import DEFAULTS

from .drawn_shapes import DERIVED, DIMENSIONS, named_case, plan, rank
from .engine.component import MASK_FORMS, Component, kind_for, recurrent_kinds
from .shape_listing import changes, flat, listing
from .suite import COMPONENTS


def dtypes_text(dtypes: set) -> str:
    """What the arrays' dtypes are, for the dtypes these contracts have ("float", "int64", "mask")."""
    words = ["Float arrays come in the run's dtype"] + ["token ids and lengths as int64"] * ("int64" in dtypes)
    return ", ".join(words) + (f"; {MASK}" if "mask" in dtypes else "") + "."


MASK = ("a mask: the article's additive float (0, or -inf where the key is hidden), in the run's dtype; "
        "boolean with the variant mask.bool_true_masked (True: hidden) or mask.bool_true_attends "
        "(True: may attend)")


# --- a component's contract --------------------------------------------------------------------------
def variants_of(component: Component) -> list[str]:
    """The variants a subject may declare for it (a recurrent one: the other cell kinds of its family)."""
    if component.recurrent:
        return [k for k in recurrent_kinds(component.family) if k != component.family]
    return list(component.variants)


@dataclass(frozen=True)
class Contract:
    component: Component
    case: dict                  # the article's kind: {"parameters", "inputs", "outputs"} trees
    variants: dict              # variant -> its case where it changes a shape, else None

    def changes(self, variant: str, refs=None) -> list[str]:
        """What the variant changes in the shapes, in words ([]: nothing)."""
        case = self.variants[variant]
        return [] if case is None else changes(self.case, case, refs)

    @property
    def name(self) -> str:
        return self.component.name

    def outputs(self, refs=None) -> tuple[list[str], list[str]]:
        lines = dict(zip(self.case["outputs"], listing(self.case["outputs"], refs)))
        return ([lines[k] for k in self.component.required if k in lines],
                [line for k, line in lines.items() if k not in self.component.required])

    def dimensions(self) -> list[str]:
        used = set()
        for part in self.case.values():
            for _, _, text in flat(part):
                used |= {word.strip("(),") for word in text.replace("·", " ").replace("+", " ").split()}
        for case in self.variants.values():
            for part in (case or {}).values():
                for _, _, text in flat(part):
                    used |= {word.strip("(),") for word in text.replace("·", " ").replace("+", " ").split()}
        return [d for d in DIMENSIONS if d in used]

    def dtypes(self) -> set:
        return {text.split(")")[-1].strip() or "float" for part in self.case.values() for _, _, text in flat(part)}

    def indices(self, refs=None) -> dict:
        """A list's index -> the lengths it runs below: {"l": ["L"], "d": ["D"]}."""
        seen = {}
        for part in [self.case, *(case for case in self.variants.values() if case)]:
            for tree in part.values():
                list(flat(tree, refs=refs, seen=seen))
        return seen


@cache
def contract(name: str) -> Contract:
    component = COMPONENTS[name]
    order, cheap = plan(component, kind_for(component))
    base = named_case(component, kind_for(component), order)
    variants = {}
    for variant in variants_of(component):
        kind = kind_for(component, variant)
        if variant in MASK_FORMS:  # the harness's conversion of the drawn masks: the same shapes
            variants[variant] = None
            continue
        order_of, cheap_of = plan(component, kind)
        variants[variant] = None if cheap_of == cheap else named_case(component, kind, order_of)
    return Contract(component, base, variants)


def references(exclude: str = "") -> dict:
    """Component -> its parameter tree, for the components that have parameters (a nested dict equal
    to one is written as a reference to it)."""
    found = {}
    for name, component in COMPONENTS.items():
        if component.has_parameters and name != exclude:
            found[name] = contract(name).case["parameters"]
            for variant, case in contract(name).variants.items():  # a cell of another kind: gru.reset_after
                if component.recurrent and case is not None and case["parameters"] != found[name]:
                    found[f"{name} ({variant})"] = case["parameters"]
    return found


def index_text(found: list[dict]) -> str:
    """"l < L, d < D, i < N": what each list index of these contracts runs below."""
    merged: dict[str, list] = {}
    for indices in found:
        for index, lengths in indices.items():
            merged.setdefault(index, []).extend(n for n in lengths if n not in merged.get(index, []))
    return ", ".join(f"{i} < {' or '.join(n)}" for i, n in sorted(merged.items(), key=lambda item: rank(item[1][0])))


# --- README's table and shapes -------------------------------------------------------------------------
def names(tree) -> str:
    return ", ".join(tree) or "none"


def row(component) -> list[str]:
    found = contract(component.name)
    outputs = found.case["outputs"]
    optional = [name for name in outputs if name not in component.required]
    variants = [v for v in variants_of(component) if v not in MASK_FORMS]
    if any(v in MASK_FORMS for v in component.variants):
        variants.append("a mask form")
    return [component.name, names(found.case["parameters"]) if component.has_parameters else "none (`{}`)",
            names(found.case["inputs"]), names(component.required) + (f"; optional: {', '.join(optional)}" if optional else ""),
            names(component.capabilities), ", ".join(component.constants) or "none", ", ".join(variants) or "none"]


HEADER = ["component", "parameters", "inputs", "outputs", "may lack", "constants", "variants"]


def shapes_line(name: str) -> str:
    """One component's shapes on one line: parameters; inputs -> outputs (optional ones bracketed)."""
    found = contract(name)
    params = "; ".join(listing(found.case["parameters"], references(name))) or "{}"
    required, optional = found.outputs()
    outputs = ", ".join(required) + (f" [, {', '.join(optional)}]" if optional else "")
    refs = references(name)
    changed = "".join(f"; with {v}: {'; '.join(found.changes(v, refs))}" for v in found.variants if found.changes(v, refs))
    return f"- `{name}`: {params} | {', '.join(listing(found.case['inputs']))} → {outputs}{changed}"


def markdown() -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(c)) + " |" for c in COMPONENTS.values()]
    defaults = ", ".join(f"{name} = {float(value):g}" for name, value in DEFAULTS.items())
    used = [d for d in DIMENSIONS if any(d in contract(n).dimensions() for n in COMPONENTS)]
    dims = "; ".join(f"{d} {DIMENSIONS[d]}" for d in used if d != "pairs")
    shapes = "\n".join(shapes_line(name) for name in COMPONENTS)
    derived = ", ".join(f"{v} = {k}" for k, v in DERIVED.items() if k != "2·pairs")
    indices = index_text([contract(name).indices(references(name)) for name in COMPONENTS])
    return ("\n".join(lines) + f"\n\nConstants, unless declared: {defaults}.\n\n"
            f"Shapes, read from drawn cases (parameters | inputs → outputs, optional ones bracketed; `nlpspec contract "
            f"NAME` says more). Dimensions: {dims}; {derived}. A list's index runs below its length ({indices}). "
            f"{dtypes_text(set().union(*(contract(n).dtypes() for n in COMPONENTS)))}\n\n{shapes}\n")


if __name__ == "__main__":
    print(markdown(), end="")
