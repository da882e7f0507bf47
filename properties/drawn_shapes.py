"""The shapes a component receives and returns, found by drawing its cases at sizes of our choosing
and naming each axis by an expression over the case's dimensions: a tree of `Array` and `Listed` per
case (`named_case`), which contract.py writes out (shape_listing.py in words).

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

import numpy as np
from hypothesis import Phase, given, settings, strategies as st

from .engine.component import Component

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
def rank(name: str) -> int:
    """A dimension's place in DIMENSIONS, the order factors and terms are written in."""
    return list(DIMENSIONS).index(name) if name in DIMENSIONS else len(DIMENSIONS)


def _monomials(names):
    """(order, text, value function) of x, 2·x and x·y over the names."""
    ordered = sorted(names, key=rank)
    for x in ordered:
        yield (1, 1, rank(x)), x, lambda s, x=x: s[x]
        yield (1, 2, rank(x)), f"2·{x}", lambda s, x=x: 2 * s[x]
    for x, y in itertools.combinations(ordered, 2):
        yield (2, 1, rank(x)), f"{x}·{y}", lambda s, x=x, y=y: s[x] * s[y]


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

