"""Which named variant, or which common mistake (mistakes.py), a failing subject computes instead.

The shrunk example is where several bugs coincide (a causal mask one ahead is the lower-right one
at n = 1, m = 2), so a suggestion that matches it is named only if it also matches on FRESH cases
drawn by the component's own strategy from seeded random choices, unshrunk and at least as large;
otherwise the message says what the fresh cases rule out. Where the subject's output is the
oracle's times a constant on every case, the factor is stated.
"""
from __future__ import annotations

from dataclasses import replace
from random import Random

import numpy as np
from hypothesis.control import BuildContext
from hypothesis.errors import StopTest
from hypothesis.internal.conjecture.data import ConjectureData
from hypothesis.strategies._internal.core import DataObject

from nlpspec.spec import CATALOGUE
from nlpspec.spec.constants import in_force

from ..profiles import dtype_name
from .component import recurrent_kinds
from .failures import SubjectFailure
from .mistakes import CATALOGUE as MISTAKES
from .tolerance import K, max_abs_diff
from .trees import leaves
from .within import judged

FRESH = 6    # fresh cases a suggestion must also match
TRIES = 24   # cases drawn to find them (the largest are kept)


def reported() -> bool:
    """Whether the example running is one whose failure is reported: Hypothesis's last run of a
    shrunk example, a replay, or a call outside Hypothesis. A failure's diagnosis (which dtype
    explains it, which variant the subject computes) costs fresh cases and oracles, and is worked
    out there, not at each of the shrinker's hundreds of steps."""
    from hypothesis import currently_in_test_context
    from hypothesis.control import current_build_context
    return not currently_in_test_context() or current_build_context().is_final


def alternatives(h):
    """Other kinds of this component, one named variant away from the one drawn: (variant, "" or
    "not ", kind) for each variant it may declare added (replacing one of the same equation) or each
    one declared taken away. Mask forms are not: the harness, not the oracle, applies them."""
    if h.component.recurrent:  # the family's other cells, on the same weights (Component.recast)
        for other in recurrent_kinds(h.component.family):
            if other != h.kind:
                yield other, "", other
        return
    forms = h.component.mask_forms
    declared_forms = [v for v in h.kind if v in forms]
    core = [v for v in h.kind if v not in forms]
    for variant in h.component.variants:
        if variant in forms or variant in core:
            continue
        replaced = CATALOGUE[variant].variant_of
        kept = [v for v in core if CATALOGUE[v].variant_of != replaced or replaced is None]
        yield variant, "", tuple(sorted(kept + [variant] + declared_forms))
    together = [v for v in h.component.switched_together if v not in core]
    if len(together) > 1:  # pre-LN is every block at once (norm_first)
        yield ", ".join(together), "", tuple(sorted(core + together + declared_forms))
    for variant in core:
        yield variant, "not ", tuple(sorted(v for v in h.kind if v != variant))


def variant_oracle(h, kind):
    """The oracle of another kind, on this case's weights (read as that cell's for a recurrent one)."""
    def oracle(params, inputs):
        if h.component.recurrent:
            params = h.component.recast(params, h.kind, kind)
            if params is None:  # the drawn weights have no reading as that cell's
                return None
        return h.component.oracle(kind)(params, inputs)
    return oracle


def mistake_oracle(h, mistake):
    """The declared kind's oracle with the mistake made (its transformed case and constants; in the
    run's dtype for a loss of precision)."""
    if mistake.in_dtype is not None:
        return lambda params, inputs: mistake.in_dtype(params, inputs, h.run.dtype)
    if mistake.oracle is not None:
        return mistake.oracle

    def oracle(params, inputs):
        found = mistake.recast(params, inputs)
        if found is None:
            return None
        with in_force(found[2]):
            return h.oracle(found[0], found[1])
    return oracle


def suggestions(h):
    """(label, whether it is a variant, what the message says when it is confirmed, oracle, how a value
    is told to match it) for each variant and mistake."""
    for variant, negation, kind in alternatives(h):
        fixed = variant if negation else ", ".join(CATALOGUE[v].variant_of for v in variant.split(", "))
        matched = "the spec without" if negation else "the variant"
        yield (f"{negation}{variant}", True, f"it matches {matched} {variant} "
               f"on this case and {{fresh}}: declare {'only the variants it does compute' if negation else 'it'}, "
               f"or fix {fixed}", variant_oracle(h, kind), alike)
    for mistake in MISTAKES:
        if mistake.in_dtype is not None:
            yield (mistake.name, False, f"precision: its error is what {mistake.name} computed in "
                   f"{dtype_name(h.run.dtype)} makes, on this case and {{fresh}} that show it: {mistake.why}",
                   mistake_oracle(h, mistake), lost_alike)
            continue
        yield (mistake.name, False, f"it matches a common mistake on this case and {{fresh}}: {mistake.name}",
               mistake_oracle(h, mistake), alike)


def alike(value, expected, exact, bound) -> bool:
    """value is the suggestion's `expected` within the bound."""
    return within(value, expected, bound)


def lost_alike(value, mistaken, exact, bound) -> bool | None:
    """Does value lose what `mistaken` (a loss of precision made in the run's dtype) loses? Where the
    mistake is outside the bound of the `exact` value, the subject's error must be of the size of its
    own (from 1/16 of it to K times it plus the bound: two evaluations in the same dtype round in other
    orders, so their errors agree in size, not in value); where the mistake is within it, the case
    does not show it: None where the subject is within it too, a case that confirms nothing."""
    own, error = max_abs_diff(mistaken, exact), max_abs_diff(value, exact)
    if own <= bound.atol:
        return None if within(value, exact, bound) else False
    return own / 16 <= error <= K * own + bound.atol


def output_of(oracle, case, name):
    """The oracle's `name` on case, or None where it does not apply or cannot run there."""
    try:
        with np.errstate(all="ignore"):
            found = oracle(*case)
    except Exception:  # a variant needs parameters this case has not (a final LayerNorm, …)
        return None
    return None if found is None or name not in found else np.asarray(found[name], dtype=float)


def within(value, expected, bound) -> bool:
    """value agrees with expected within bound: NaN or Inf only where expected is too, entries
    undefined in either not compared."""
    if (~np.isfinite(value) & np.isfinite(expected)).any():
        return False
    undefined = np.isnan(expected) | np.isnan(value)
    return not judged(np.where(undefined, np.nan, value), np.where(undefined, np.nan, expected), bound)[0]


def entries(case) -> int:
    return sum(a.size for _, a in leaves(case) if a.dtype.kind == "f")


def fresh_cases(h) -> list:
    """The largest FRESH of TRIES cases drawn by the component's strategy from seeded random choices
    (unshrunk: larger than a shrunk case): (case, the subject's outputs as returned, their
    tolerances, the oracle's). A case the subject fails otherwise (raises, NaN) is left out."""
    drawn, examples, run = [], h.examples, h.run
    h.run = replace(run, scale=False)  # the default sizes, also in the scale profile (millions of entries)
    for seed in range(TRIES):
        data = ConjectureData(random=Random(seed))
        try:
            with BuildContext(data, is_final=False, wrapped_test=None):
                drawn.append(h.draw(DataObject(data)))
        except (Exception, StopTest):  # the choices ran out, or the strategy rejected them
            continue
    h.examples, h.run = examples, run
    drawn.sort(key=entries, reverse=True)
    found, kept = [], (list(h.calls), dict(h.raw))
    try:
        for params, inputs in drawn:
            if len(found) == FRESH:
                break
            reference = h.reference(params, inputs)
            try:
                actual = {name: h.raw[name].copy() for name in h.call(h.build(params), inputs, reference)}
            except SubjectFailure as failure:  # its NaN or Inf where the oracle is finite is judged too
                if not failure.values:
                    continue
                actual = failure.values
            found.append(((params, inputs), actual, h.tolerances(params, inputs, reference), reference))
    finally:
        h.calls, h.raw = kept
    return found


def factor(value, expected, bound) -> float | None:
    """c where value is c·expected within bound (c ≠ 1, expected not all 0), else None."""
    defined = ~(np.isnan(expected) | np.isnan(value))
    e, v = expected[defined], value[defined]
    if not e.size or not np.any(e):
        return None
    c = float(np.dot(v, e) / np.dot(e, e))
    return c if abs(c - 1) > 1e-9 and within(v, c * e, bound) else None


def suggestion(h, case, name: str, value: np.ndarray, bound, index=None) -> str:
    """What a failing output's values (or, with `index`, its NaN or Inf there) match, in words:
    a variant or mistake confirmed on fresh cases; else the variants tried, those the fresh cases
    rule out, and a constant factor if there is one."""
    if getattr(h, "diagnosing", False):
        return ""
    h.diagnosing = True
    try:
        return worded(h, case, name, value, bound, index)
    finally:
        h.diagnosing = False


def worded(h, case, name, value, bound, index) -> str:
    tried, shrunk_only, unjudged, fresh, exact = [], [], [], None, None
    for label, variant, confirmed, oracle, matches in suggestions(h):
        expected = output_of(oracle, case, name)
        if expected is None or expected.shape != value.shape:
            continue
        if variant:
            tried.append(label)
        if index is None and matches is lost_alike and exact is None:
            exact = h.reference(*case)[name]
        here = not np.isfinite(expected[index]) if index is not None else matches(value, expected, exact, bound)
        if not here:
            continue
        fresh = fresh_cases(h) if fresh is None else fresh
        judged = [matches(v[name], e, r[name], b[name]) for c, v, b, r in fresh if name in v  # a number to compare
                  for e in [output_of(oracle, c, name)] if e is not None and e.shape == v[name].shape
                  and (np.isfinite(v[name]) & np.isfinite(e)).any()]
        judged = [found for found in judged if found is not None]  # None: a case that does not show it
        if judged and all(judged):
            return confirmed.format(fresh=f"{len(judged)} fresh one{'s' * (len(judged) != 1)}")
        (shrunk_only if judged else unjudged).append(label)
    them = "them" if len(shrunk_only) > 1 else "it"
    ruled = f" ({', '.join(shrunk_only)}: this case only, {len(fresh)} fresh cases rule {them} out)" \
        if shrunk_only else ""
    words = [f"it matches none of the variants {', '.join(tried)}{ruled}"] if tried and index is None else \
        [f"{ruled.strip(' ()')}"] if ruled else []
    if unjudged:  # the subject failed every fresh case otherwise: nothing confirms them
        words.append(f"{', '.join(unjudged)} match{'es' * (len(unjudged) == 1)} this case, unconfirmed: no fresh "
                     f"case could be judged")
    if index is None:
        words += factor_words(h, case, name, value, bound, fresh)
    return "; ".join(words)


def factor_words(h, case, name, value, bound, fresh) -> list:
    """Where the output is the oracle's times a constant on this case and the fresh ones: the factor."""
    here = factor(value, h.reference(*case)[name], bound)
    if here is None:
        return []
    fresh = fresh_cases(h) if fresh is None else fresh
    found = [factor(v[name], r[name], b[name]) for _, v, b, r in fresh if name in v]
    if not found or any(c is None for c in found):
        return []
    if all(abs(c - here) <= 1e-6 * abs(here) for c in found):
        return [f"its {name!r} is {here:.6g} times the oracle's here and on {len(found)} fresh cases"]
    return [f"its {name!r} is a constant multiple of the oracle's on each case, the factor depending on the sizes "
            f"({', '.join(f'{c:.4g}' for c in [here] + found[:3])})"]
