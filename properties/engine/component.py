"""What a component is: a unit a subject offers, with the E-ids it covers, a way to draw a case
and its oracle; and how a subject's declared variants select what is drawn and checked.

Each family (properties/recurrent, attention, transformer) makes its components; the engine and
the generic checks read only what is here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from nlpspec.spec import CATALOGUE, recurrent

# the boolean mask forms (default: additive float, 0 or -inf); a component that takes masks declares them
# as its mask_forms, which is what the engine reads
MASK_FORMS = ("mask.bool_true_masked", "mask.bool_true_attends")


@dataclass(frozen=True, kw_only=True)
class Component:
    """A unit a subject offers: its E-ids, which outputs it must return, how to draw a case; and its
    traits, what a check needs to know of it (ModuleInfo style: the checks that apply, and how they
    read a case, follow from the traits, never from the name)."""

    name: str
    family: str                     # rnn, lstm, gru (a cell variant may replace it), or attention, pe
    eids: tuple[str, ...]
    required: tuple[str, ...]       # outputs every subject returns; other spec names are optional
    draw: Callable                  # (hypothesis data, kind) -> (params, inputs)
    oracle: Callable                # kind -> ((params, inputs) -> outputs)
    output_eids: dict               # output name -> the E-id that defines it
    variants: tuple[str, ...] = ()  # named variants a subject may declare (the recurrent ones: a cell kind)
    shared: tuple[str, ...] = ()    # inputs and outputs without a batch axis (the same for every row)
    replaces: dict = field(default_factory=dict)  # variant -> the E-ids it stands for (default: variant_of)
    bounds: dict = field(default_factory=dict)    # output -> (low, high) the article's functions keep it in
    probabilities: tuple[str, ...] = ()           # outputs whose last axis is a softmax row
    hidden_keys: Callable | None = None           # (kind, inputs) -> the spec's mask B (True: hidden), or None
    kind_outputs: Callable = lambda kind: {}      # kind -> output E-ids that the drawn kind adds or renames
    capabilities: dict = field(default_factory=dict)  # what a subject may lack -> what is then not drawn
    constants: tuple[str, ...] = ()               # the free constants its oracle reads (spec/constants.py)
    has_parameters: bool = True                   # False: the builder gets {} (attention, pe, …)
    recast: Callable | None = None                # (params, kind, other kind) -> the same weights read as
                                                  # the other kind's, or None (the variant diagnosis)
    # --- traits: the roles of its inputs ---
    queries: str | None = None      # the input holding the queries (attention: q; mha: query; attn.seq2seq: S)
    keys: tuple[str, ...] = ()      # the inputs holding the keys and their values, which move together
    masks: tuple[str, ...] = ()     # the mask inputs a case gives (True: hidden): mask; attn_mask, key_padding_mask
    source: str | None = None       # the sequence its key padding covers (an encoder's x, the model's src)
    target: str | None = None       # the sequence it reads causally, position i from 0…i (a decoder's y, tgt)
    memory: str | None = None       # the input holding the encoder's output that cross-attention reads
    # --- traits: its structure and behaviour ---
    causal: bool = False            # a position sees only those up to it (mask.causal)
    mask_forms: tuple[str, ...] = ()  # its variants that say only how masks reach the subject (one oracle)
    switched_together: tuple[str, ...] = ()  # its variants a subject switches all at once (pre-LN: norm_first)
    heads: bool = False             # its parameters are one multi-head attention's (W_Q: h × d_model × d_k, …)
    blocks: tuple[tuple[str, str], ...] = ()  # a layer's residual blocks: (E-id, its sublayer's params or "ffn")
    layer: str | None = None        # a stack: the component of the layer it repeats
    incremental: bool = False       # decodes one position at a time from the prefix as in one pass
    step: bool = False              # one step of a recurrent cell: (x, the previous state) -> the new state
    cell: str | None = None         # a recurrent layer: the component of the cell it steps
    padded: bool = False            # each row runs to its own length (`lengths`), the rest padding
    full_size: tuple[int, ...] | None = None  # the input's shape in the article, checked once (pe: 1 × 2048 × 512)

    @property
    def recurrent(self) -> bool:
        return self.family in recurrent.CELLS

    def outputs_of(self, kind) -> dict:
        """Output name -> E-id, for the kind drawn."""
        return {**self.output_eids, **self.kind_outputs(kind)}


def recurrent_kinds(family: str) -> list[str]:
    """The cell kinds of a recurrent family: the article's and its variants ("gru", "gru.reset_after")."""
    return [k for k in recurrent.CELLS if k.split(".")[0] == family]


def cell_eids(kind):
    return tuple(eq.eid for eq in recurrent.CELLS[kind])


def declared(variants, options: dict | None = None) -> tuple[str, ...]:
    """A subject's declaration for one component (None, an E-id, several, or a function of the
    component's options returning one of those, for a knob that switches the variant) as a tuple."""
    if callable(variants):
        variants = variants(options or {})
    if variants is None:
        return ()
    return (variants,) if isinstance(variants, str) else tuple(variants)


def kind_for(component: Component, variants=None):
    """What to draw and check: for a recurrent component the cell kind (its own, or the variant the
    subject declares); for the others the sorted tuple of declared variants (empty: the article's)."""
    names = declared(variants)
    if component.recurrent:
        if not names:
            return component.family
        known = [k for k in recurrent.CELLS if k.split(".")[0] == component.family and k != component.family]
        if len(names) > 1 or names[0] not in known:
            raise ValueError(f"unknown variant {', '.join(map(repr, names))} for {component.name}; known: "
                             f"{', '.join(known) or 'none'}")
        return names[0]
    unknown = [v for v in names if v not in component.variants]
    if unknown:
        raise ValueError(f"unknown variant {', '.join(map(repr, unknown))} for {component.name}; known: "
                         f"{', '.join(component.variants) or 'none'}")
    if sum(v in component.mask_forms for v in names) > 1:
        raise ValueError(f"{component.name}: declare one mask form, not {', '.join(names)}")
    return tuple(sorted(names))


def eids_for(component: Component, kind) -> tuple[str, ...]:
    """The E-ids a check of this component covers, once the variant is chosen."""
    if component.recurrent:
        if kind == component.family:
            return component.eids
        return tuple(e for e in component.eids if e not in cell_eids(component.family)) + cell_eids(kind)
    eids = list(component.eids)
    for variant in kind:
        replaced = component.replaces.get(variant, (CATALOGUE[variant].variant_of,))
        at = min((eids.index(e) for e in replaced if e in eids), default=len(eids))
        eids = [e for e in eids if e not in replaced]
        eids.insert(min(at, len(eids)), variant)
    return tuple(eids)
