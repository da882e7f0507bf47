"""What a check names, as it runs: the E-ids a declared variant stands for replaced by the variant
(a pre-LN run's `enc.attn` is `enc.attn.pre_ln`), so a record never credits an equation its run left out."""
from __future__ import annotations

from dataclasses import replace

from nlpspec.spec import CATALOGUE


def standing_for(kind, replaces: dict | None = None) -> dict:
    """E-id -> the declared variant that replaces it in this kind (`replaces`: a component's own
    exceptions; none for a recurrent cell kind, whose E-ids are the kind's own)."""
    if isinstance(kind, str):
        return {}
    return {eid: variant for variant in kind for eid in (replaces or {}).get(variant, (CATALOGUE[variant].variant_of,))}


def ran_as(target, *eids: str) -> tuple:
    """These E-ids as `target` (a harness or a Target: component and kind) runs them."""
    swap = standing_for(target.kind, target.component.replaces)
    return tuple(dict.fromkeys(swap.get(eid, eid) for eid in eids))


def headed_as_run(components: list) -> list:
    """The components, each output's E-id renamed as the drawn kind runs it (kind_outputs): a pre-LN
    encoder layer's Z is enc.attn.pre_ln, so a failure there is headed by the equation that ran.
    Recurrent components keep theirs (their kind is a cell, its E-ids its own)."""
    def renamed(component):
        def kind_outputs(kind):
            swap = standing_for(kind, component.replaces)
            return {name: swap[eid] for name, eid in component.output_eids.items() if eid in swap}
        return replace(component, kind_outputs=kind_outputs)
    return [c if c.recurrent else renamed(c) for c in components]
