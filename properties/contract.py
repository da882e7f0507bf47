"""What a subject's component receives and returns, with every tensor's shape, and what it may
declare, read from the suite itself (its components, their checks and drawn cases): README's
"Writing a subject" table and shapes, and what `nlpspec list` / `nlpspec contract NAME` print.

    python -m nlpspec.properties.contract

How the shapes are found. A component's case is drawn by its own `draw` (properties/*/components.py),
every size through `strategies.size` under the dimension's name as label ("B", "n", "d_k", "H", …).
Here the draw runs with Hypothesis's data object wrapped (`_Sizes`): each size is answered with a
distinct prime of our choosing, booleans with False (the general case: cross-attention, key and value
widths of their own) and a sampled choice with its first element; everything else is drawn as usual.
The oracle then gives the outputs. Each axis of each array (and each list's length) is named by the
expressions over the case's dimensions that equal its size: a dimension, twice one, a product of two,
or a sum of two such terms (H + I, H + D·H, h·d_k). Three cases with the primes permuted are drawn;
an axis keeps the simplest expression that holds in all three (fewest terms, then fewest factors), and
one that stays ambiguous is an error (`AmbiguousShape`), not a guess. Primes make a coincidence rare to
begin with: a prime size is one dimension and a product of two primes is those two; only a sum (or
2·x) can meet another expression by chance in one case, and the other two cases tell them apart. The
smallest primes go to the sizes the suite keeps smallest (a stack's layers, the heads), so that the
three cases stay quick to draw and evaluate (all 25 components, with their variants, in about 2 s).
A variant is drawn again only where a cheap case (every size 2) shows it changes a shape.

Why not the spec's symbols (`Equation.shapes`): they are the spec's column-vector layout of one
example (W_f: H × (H + I), x: I × 1), not the arrays a builder receives (batch first, biases 1-D,
mha's per-head weights stacked on a head axis, a stack's list of layer dicts); the drawn cases are
exactly what the suite hands a subject, so their shapes cannot drift from it. Only the names are
written here: what each dimension means (DIMENSIONS), a label the suite abbreviates (RENAMED), and
the article's name of a product (DERIVED: d_model = h·d_k).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import Phase, given, settings, strategies as st

from nlpspec.spec.constants import DEFAULTS

from .engine.component import MASK_FORMS, Component, kind_for, recurrent_kinds
from .suite import COMPONENTS

DIMENSIONS = {  # the suite's size labels, in the order factors and terms are written
    "B": "batch",
    "T": "input sequence length (time steps)",
    "n": "query (or source) sequence length",
    "m": "key (or target) sequence length",
    "L": "stacked layers",
    "D": "directions: 1 (forward), or 2 (forward, then backward)",
    "N": "layers of the stack",
    "N_enc": "encoder layers",
    "N_dec": "decoder layers",
    "h": "heads",
    "H": "hidden width",
    "I": "input width",
    "J": "decoder input width",
    "V": "vocabulary (output width)",
    "V_src": "source vocabulary",
    "d_model": "model width",
    "d_k": "query and key width of one head",
    "d_v": "value width",
    "d_kin": "key input width",
    "d_vin": "value input width",
    "d_h": "state width",
    "d_ff": "the FFN's inner width",
    "pairs": "sine-cosine column pairs (d_model = 2·pairs)",
}
RENAMED = {"d": "d_model"}  # labels the suite draws under a shorter name
DERIVED = {"h·d_k": "d_model", "2·pairs": "d_model"}  # products the article names
def dtypes_text(dtypes: set) -> str:
    """What the arrays' dtypes are, for the dtypes these contracts have ("float", "int64", "mask")."""
    words = ["Float arrays come in the run's dtype"] + ["token ids and lengths as int64"] * ("int64" in dtypes)
    return ", ".join(words) + (f"; {MASK}" if "mask" in dtypes else "") + "."


MASK = ("a mask: the article's additive float (0, or -inf where the key is hidden), in the run's dtype; "
        "boolean with the variant mask.bool_true_masked (True: hidden) or mask.bool_true_attends "
        "(True: may attend)")
PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67)


class AmbiguousShape(Exception):
    """An axis whose size more than one expression of the case's dimensions explains."""


# --- drawing a case at sizes of our choosing -----------------------------------------------------
class _Sizes:
    """Hypothesis's data object, but each size (an integer drawn under an identifier label, as
    strategies.size draws it) is `values(label)`; booleans are False and a sampled choice is its
    first element: one case, the most general, of sizes we know."""

    def __init__(self, data, values):
        self.data, self.values, self.sizes = data, values, {}

    def draw(self, strategy, label=None):
        text = repr(strategy)
        bounds = re.fullmatch(r"integers\(min_value=([\d_]+), max_value=([\d_]+)\)", text)
        if label and label.isidentifier() and bounds:
            value = self.values(label, int(bounds.group(2).replace("_", "")))
            self.sizes[label] = value
            return value
        if text == "booleans()":
            return False
        if text.startswith("sampled_from("):
            return strategy.elements[0]
        return self.data.draw(strategy, label=label)


def draw_at(component: Component, kind, values):
    """(params, inputs, outputs, sizes) of one case of `kind` at the sizes `values(label, high)` gives."""
    found = []

    @settings(max_examples=1, database=None, deadline=None, derandomize=True, phases=(Phase.generate,))
    @given(data=st.data())
    def draw(data):
        sizes = _Sizes(data, values)
        params, inputs = component.draw(sizes, kind)
        found.append((params, inputs, sizes.sizes))
    draw()
    params, inputs, sizes = found[0]
    return params, inputs, component.oracle(kind)(params, inputs), sizes


def plan(component: Component, kind) -> tuple[dict, dict]:
    """The case's sizes in the order the suite keeps them small (their upper bound, then the order
    drawn), and the tree of a cheap case (every size 2), to tell whether a variant changes any shape."""
    seen = {}

    def two(label, high):
        seen.setdefault(label, (high, len(seen)))
        return 2
    params, inputs, outputs, _ = draw_at(component, kind, two)
    return sorted(seen, key=lambda label: seen[label]), {"parameters": _concrete(params), "inputs": _concrete(inputs),
                                                         "outputs": _concrete(outputs)}


def _concrete(tree):
    if isinstance(tree, dict):
        return {k: _concrete(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_concrete(v) for v in tree]
    return np.shape(tree), np.asarray(tree).dtype.kind


def assignments(order: list) -> list[dict]:
    """Three assignments of distinct primes to the case's sizes: the smallest to the sizes the suite
    keeps smallest (a stack's layers, the heads), then with neighbours swapped in turn."""
    swaps = [list(range(len(order)))]
    for start in (0, 1):
        perm = list(range(len(order)))
        for i in range(start, len(order) - 1, 2):
            perm[i], perm[i + 1] = perm[i + 1], perm[i]
        swaps.append(perm)
    return [{label: PRIMES[perm[i]] for i, label in enumerate(order)} for perm in swaps]


# --- naming sizes --------------------------------------------------------------------------------
def _rank(name: str) -> int:
    return list(DIMENSIONS).index(name) if name in DIMENSIONS else len(DIMENSIONS)


def _monomials(names):
    """(order, text, value function) of x, 2·x and x·y over the names."""
    ordered = sorted(names, key=_rank)
    for x in ordered:
        yield (1, 1, _rank(x)), x, lambda s, x=x: s[x]
        yield (1, 2, _rank(x)), f"2·{x}", lambda s, x=x: 2 * s[x]
    for x, y in itertools.combinations(ordered, 2):
        yield (2, 1, _rank(x)), f"{x}·{y}", lambda s, x=x, y=y: s[x] * s[y]


def expressions(names):
    """Every candidate expression: (text, value function); a sum's terms in the order the article
    writes them (H + I, H + D·H)."""
    monomials = sorted(_monomials(names), key=lambda m: m[0])
    found = [(text, fn) for _, text, fn in monomials]
    for (_, a, fa), (_, b, fb) in itertools.combinations(monomials, 2):
        found.append((f"{a} + {b}", lambda s, fa=fa, fb=fb: fa(s) + fb(s)))
    return found


def by_size(candidates, sizes) -> dict:
    """Size -> the candidate texts of that size in this case."""
    found: dict[int, set] = {}
    for text, fn in candidates:
        found.setdefault(fn(sizes), set()).add(text)
    return found


def _named(size: int, candidates, sizes) -> frozenset:
    return frozenset(candidates.get(size, ())) or frozenset({str(size)})


# --- a case's tree with each size named ------------------------------------------------------------
@dataclass(frozen=True)
class Array:
    dims: tuple                 # per axis: a frozenset of candidate texts (one text once merged)
    dtype: str                  # "float", "int64" or "mask"


@dataclass(frozen=True)
class Listed:
    length: frozenset | str
    groups: tuple               # ((first index, node), …): runs of equal elements


def _tree(value, candidates, sizes):
    if isinstance(value, dict):
        return {k: _tree(v, candidates, sizes) for k, v in value.items()}
    if isinstance(value, list):
        nodes = [_tree(v, candidates, sizes) for v in value]
        groups = [(i, node) for i, node in enumerate(nodes) if i == 0 or node != nodes[i - 1]]
        return Listed(_named(len(value), candidates, sizes), tuple(groups))
    value = np.asarray(value)
    dtype = "mask" if value.dtype == bool else "int64" if value.dtype.kind in "iu" else "float"
    return Array(tuple(_named(s, candidates, sizes) for s in value.shape), dtype)


def _merge(trees, where: str):
    """The trees of the three cases as one, each size named by the simplest expression true in all."""
    first = trees[0]
    if isinstance(first, dict):
        if any(set(t) != set(first) for t in trees):
            raise AmbiguousShape(f"{where}: the cases differ in their names")
        return {k: _merge([t[k] for t in trees], f"{where}.{k}" if where else k) for k in first}
    if isinstance(first, Listed):
        if any(len(t.groups) != len(first.groups) or [i for i, _ in t.groups] != [i for i, _ in first.groups]
               for t in trees):
            raise AmbiguousShape(f"{where}: the cases' lists differ in how their elements vary")
        groups = tuple((i, _merge([t.groups[g][1] for t in trees], f"{where}[{i}]"))
                       for g, (i, _) in enumerate(first.groups))
        return Listed(_pick([t.length for t in trees], where + " (length)"), groups)
    return Array(tuple(_pick([t.dims[a] for t in trees], f"{where} axis {a}") for a in range(len(first.dims))),
                 first.dtype)


def _pick(options: list, where: str) -> str:
    common = frozenset.intersection(*options)
    if not common:
        raise AmbiguousShape(f"{where}: no expression of the dimensions fits its sizes in every case")
    simplest = min(map(_complexity, common))
    best = [text for text in common if _complexity(text) == simplest]
    if len(best) > 1:
        raise AmbiguousShape(f"{where}: its size is {' or '.join(sorted(best))}")
    return DERIVED.get(best[0], best[0])


def _complexity(text: str) -> tuple:
    return text.count(" + "), text.count("·")


def named_case(component: Component, kind, order: list) -> dict:
    """{"parameters", "inputs", "outputs"}: trees of Array and Listed, every size named."""
    trees = []
    for values in assignments(order):
        params, inputs, outputs, sizes = draw_at(component, kind, lambda label, high: values[label])
        sizes = {RENAMED.get(k, k): v for k, v in sizes.items()}
        candidates = by_size(expressions(sizes), sizes)
        trees.append({"parameters": _tree(params, candidates, sizes), "inputs": _tree(inputs, candidates, sizes),
                      "outputs": _tree(outputs, candidates, sizes)})
    return _merge(trees, "")


# --- in words ----------------------------------------------------------------------------------------
def shape_text(dims) -> str:
    """An array's shape as Python writes it: (B, n, d_model), (V,)."""
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def leaf_text(array: Array) -> str:
    return shape_text(array.dims) + {"float": "", "int64": " int64", "mask": " mask"}[array.dtype]


def _index(length: str, taken: set) -> str:
    """A list's index: its length's name in lower case (l < L, d < D) unless that names a dimension."""
    return next(o for o in (length.lower(), "i", "j", "k", "q") if len(o) == 1 and o.isalpha()
                and o not in DIMENSIONS and o not in taken)


def flat(node, path: str = "", condition: str = "", refs: dict | None = None, taken=None, seen=None):
    """(path, condition, text) per leaf: a list's elements under an index (layers[l]), the element
    runs that differ told apart by a condition on it (l = 0, l ≥ 1); a dict equal to another component's
    parameters (refs: name -> tree) as a reference to them."""
    taken = set() if taken is None else taken
    if isinstance(node, dict):
        found = reference(node, refs) if refs and path else None
        if found:
            yield path, condition, found
            return
        for key, value in node.items():
            yield from flat(value, f"{path}.{key}" if path else key, condition, refs, taken, seen)
    elif isinstance(node, Listed):
        index = _index(node.length, set(taken))
        if seen is not None and node.length not in seen.setdefault(index, []):
            seen[index].append(node.length)
        for g, (start, element) in enumerate(node.groups):
            if len(node.groups) == 1:
                where = ""
            elif g == len(node.groups) - 1:
                where = f"{index} = {start}" if start == 0 else f"{index} ≥ {start}"
            else:
                end = node.groups[g + 1][0] - 1
                where = f"{index} = {start}" if end == start else f"{start} ≤ {index} ≤ {end}"
            both = "; ".join(c for c in (condition, where) if c)
            yield from flat(element, f"{path}[{index}]", both, refs, taken | {index}, seen)
    else:
        yield path, condition, leaf_text(node)


def reference(node: dict, refs: dict) -> str | None:
    """"lstm.cell's parameters" where the dict is another component's parameters, or "… with I = J"
    where it is theirs with one dimension written otherwise (a decoder's input width, layer l's D·H);
    the fewest such renamings first."""
    found = []
    for name, tree in refs.items():
        renamed = _renaming(tree, node)
        if renamed is not None:
            found.append((len(renamed), name, renamed))
    if not found:
        return None
    _, name, renamed = min(found, key=lambda f: f[0])
    return f"{name}'s parameters" + (" with " + ", ".join(f"{a} = {b}" for a, b in renamed.items()) if renamed else "")


def _axes(node, path=""):
    """(path, axis, text) of every array axis of a tree, and its lists' lengths."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _axes(value, f"{path}.{key}")
    elif isinstance(node, Listed):
        yield path, "length", node.length
        for start, element in node.groups:
            yield from _axes(element, f"{path}[{start}]")
    else:
        for a, text in enumerate(node.dims):
            yield path, a, text
        yield path, "dtype", node.dtype


def _renaming(tree, node) -> dict | None:
    """{dimension: what the node has instead} that makes `tree` the node, term by term of each axis
    (I = D·H turns H + I into H + D·H), or None."""
    if not isinstance(tree, dict) or not tree:
        return None
    mine, theirs = list(_axes(tree)), list(_axes(node))
    if [(p, a) for p, a, _ in mine] != [(p, a) for p, a, _ in theirs]:
        return None
    renamed = {}
    for (_, _, was), (_, _, now) in zip(mine, theirs):
        if was != now:
            terms, others = was.split(" + "), now.split(" + ")
            if len(terms) != len(others):
                return None
            for a, b in zip(terms, others):
                if a != b:
                    if a not in DIMENSIONS or renamed.setdefault(a, b) != b:
                        return None
    rename = lambda text: " + ".join(renamed.get(t, t) for t in text.split(" + "))
    if any(rename(was) != now for (_, _, was), (_, _, now) in zip(mine, theirs)):
        return None
    return renamed


def listing(node, refs=None) -> list[str]:
    """One text per leaf path: "W_f (H, H + I)", "layers[l][d].W_xh (H, I) for l = 0, (H, D·H) for l ≥ 1"."""
    return lines_of(leaves(node, refs))


def leaves(node, refs=None) -> dict:
    """Leaf path -> [(condition, text)]."""
    by_path: dict[str, list] = {}
    for path, condition, text in flat(node, refs=refs):
        by_path.setdefault(path, []).append((condition, text))
    return by_path


def lines_of(by_path: dict) -> list[str]:
    lines = []
    for path, found in by_path.items():
        if len(found) > 1 and len({text for _, text in found}) == 1:  # the same in every run of elements
            found = [("", found[0][1])]
        if len(found) == 1 and not found[0][0]:
            text = found[0][1]
            lines.append(f"{path}: {text}" if "parameters" in text else f"{path} {text}")
        else:
            lines.append(f"{path}{':' if any('parameters' in t for _, t in found) else ''} " + ", ".join(f"{text} for {condition}" if condition else text
                                                for condition, text in found))
    return lines


def lengths(node) -> dict:
    """List path -> its length's name, for the index letters' meaning."""
    found = {}
    if isinstance(node, dict):
        for value in node.values():
            found |= lengths(value)
    elif isinstance(node, Listed):
        found[node.length] = True
        for _, element in node.groups:
            found |= lengths(element)
    return found


# --- a component's contract --------------------------------------------------------------------------
def variants_of(component: Component) -> list[str]:
    """The variants a subject may declare for it (a recurrent one: the other cell kinds of its family)."""
    if component.recurrent:
        return [k for k in recurrent_kinds(component.family) if k != component.family]
    return list(component.variants)


def changes(base: dict, other: dict, refs=None) -> list[str]:
    """What a variant changes in the parameters, inputs and outputs: "+ W_in (H, I)", "− W_h", "out (…)"."""
    found = []
    for part in ("parameters", "inputs", "outputs"):
        was, now = leaves(base[part], refs), leaves(other[part], refs)
        words = [f"− {path}" for path in was if path not in now]
        words += [("+ " if path not in was else "") + line for path, line in zip(now, lines_of(now))
                  if was.get(path) != now[path]]
        if words:
            found.append(f"{part}: " + ", ".join(words))
    return found


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
    return ", ".join(f"{i} < {' or '.join(n)}" for i, n in sorted(merged.items(), key=lambda item: _rank(item[1][0])))


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
