"""The components a subject can offer, each with the E-ids it covers, a way to draw a case,
and its oracle (the spec, evaluated in NumPy in any dtype).

Arrays here are in the subject's layout (batch first, row vectors, biases 1-D); the oracle
converts to the spec's columns and back. A case is (params, inputs); params may nest (a list of
layers, an encoder and a decoder).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from nlpspec.spec import CATALOGUE, architectures, recurrent

from . import attention as att
from . import transformer as tf
from .strategies import Shape, case, magnitude, size


def columns(params):
    """Subject layout -> spec layout for parameters: a bias (H,) becomes a column (H, 1)."""
    if isinstance(params, dict):
        return {k: columns(v) for k, v in params.items()}
    if isinstance(params, list):
        return [columns(v) for v in params]
    return params[:, None] if params.ndim == 1 else params


CELL_PARAMS = {
    # parameter name -> shape in (H, I) of a cell of each kind
    "rnn": {"W_hh": lambda H, I: (H, H), "W_xh": lambda H, I: (H, I), "b_h": lambda H, I: (H,)},
    "lstm": {f"{p}_{g}": (lambda H, I: (H, H + I)) if p == "W" else (lambda H, I: (H,))
             for g in "fiCo" for p in "Wb"},
    "gru": {f"{p}_{g}": (lambda H, I: (H, H + I)) if p == "W" else (lambda H, I: (H,))
            for g in "rzh" for p in "Wb"},
    "gru.reset_after": {"W_r": lambda H, I: (H, H + I), "b_r": lambda H, I: (H,),
                        "W_z": lambda H, I: (H, H + I), "b_z": lambda H, I: (H,),
                        "W_in": lambda H, I: (H, I), "b_in": lambda H, I: (H,),
                        "W_hn": lambda H, I: (H, H), "b_hn": lambda H, I: (H,)},
}


def cell_params(kind: str, H: int, I: int, bound: float) -> dict:
    return {name: Shape(shape(H, I), bound) for name, shape in CELL_PARAMS[kind].items()}


def state(kind: str, shape: tuple, bound: float) -> dict:
    """h_prev in [-1, 1] (a tanh's range), C_prev (LSTM) in [-bound, bound]."""
    return {"h_prev": Shape(shape, 1.0), **({"C_prev": Shape(shape, bound)} if kind == "lstm" else {})}


def state_names(kind: str) -> tuple[str, ...]:
    return recurrent.STATE[kind]


# --- oracles -----------------------------------------------------------------------------------
def cell_oracle(kind: str):
    def oracle(params: dict, inputs: dict) -> dict:
        state = {name: inputs[f"{name}_prev"][..., None] for name in state_names(kind)}
        env = architectures.step(kind, columns(params), inputs["x"][..., None], state)
        return {eq.lhs.name: env[eq.lhs.name][..., 0] for eq in recurrent.CELLS[kind]}
    return oracle


def output_oracle(params: dict, inputs: dict) -> dict:
    return {"y": architectures.output(columns(params), inputs["h"][..., None])[..., 0]}


def layers_oracle(kind: str):
    def oracle(params: dict, inputs: dict) -> dict:
        L, D = inputs["h_prev"].shape[1:3]
        state0 = [[{name: inputs[f"{name}_prev"][:, l, d, :, None] for name in state_names(kind)}
                   for d in range(D)] for l in range(L)]
        out, finals = architectures.layers(kind, columns(params["layers"]), inputs["x"][..., None], state0)
        result = {"out": out[..., 0]}
        for name in state_names(kind):
            result[name] = np.stack([np.stack([f[name][..., 0] for f in layer], 1) for layer in finals], 1)
        return result
    return oracle


def seq2seq_oracle(kind: str):
    def oracle(params: dict, inputs: dict) -> dict:
        p = columns(params)
        state0 = {name: inputs[f"{name}_prev"][..., None] for name in state_names(kind)}
        hs, ys = architectures.seq2seq(kind, p["encoder"], p["decoder"], p["output"], inputs["x"][..., None],
                                       inputs["y_prev"][..., None], state0)
        return {"h": hs[..., 0], "y": ys[..., 0]}
    return oracle


# --- drawing cases: sizes first, then every array of the case in one draw -------------------
def draw_cell_case(kind: str):
    def draw(data):
        B, H, I, bound = size(data, "B"), size(data, "H"), size(data, "I"), magnitude(data)
        return case(data, cell_params(kind, H, I, bound), {"x": Shape((B, I), bound), **state(kind, (B, H), bound)})
    return draw


def draw_output_case(data):
    B, H, V, bound = size(data, "B"), size(data, "H"), size(data, "V"), magnitude(data)
    return case(data, {"W_y": Shape((V, H), bound), "b_y": Shape((V,), bound)}, {"h": Shape((B, H), 1.0)})


def draw_layers_case(kind: str, layers: int | None = None, directions: int | None = None):
    def draw(data):
        B, T, H, I, bound = size(data, "B"), size(data, "T", high=4), size(data, "H"), size(data, "I"), magnitude(data)
        L = layers or size(data, "L", high=3)
        D = directions or size(data, "D", high=2)
        params = {"layers": [[cell_params(kind, H, I if l == 0 else D * H, bound) for d in range(D)]
                             for l in range(L)]}
        return case(data, params, {"x": Shape((B, T, I), bound), **state(kind, (B, L, D, H), bound)})
    return draw


def draw_seq2seq_case(kind: str):
    def draw(data):
        B, T, m, bound = size(data, "B"), size(data, "T", high=4), size(data, "m", high=4), magnitude(data)
        H, I, J, V = size(data, "H"), size(data, "I"), size(data, "J"), size(data, "V")
        params = {"encoder": cell_params(kind, H, I, bound), "decoder": cell_params(kind, H, J, bound),
                  "output": {"W_y": Shape((V, H), bound), "b_y": Shape((V,), bound)}}
        inputs = {"x": Shape((B, T, I), bound), "y_prev": Shape((B, m, J), bound), **state(kind, (B, H), bound)}
        return case(data, params, inputs)
    return draw


# --- the components ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """A unit a subject offers: its E-ids, which outputs it must return, how to draw a case."""

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

    @property
    def recurrent(self) -> bool:
        return self.family in recurrent.CELLS


def cell_eids(kind):
    return tuple(eq.eid for eq in recurrent.CELLS[kind])


def cell_output_eids(kind):
    return {eq.lhs.name: eq.eid for eq in recurrent.CELLS[kind]}


ARCH_EIDS = ("seq.many_to_many", "seq.many_to_one", "seq.stacked", "seq.bidirectional")


def _recurrent_components():
    found = [Component("rnn.output", "rnn", ("rnn.output",), ("y",), lambda data, kind: draw_output_case(data),
                       lambda kind: output_oracle, {"y": "rnn.output"})]
    for kind in ("rnn", "lstm", "gru"):
        found.append(Component(f"{kind}.cell", kind, cell_eids(kind), state_names(kind),
                               lambda data, k: draw_cell_case(k)(data), cell_oracle, cell_output_eids(kind)))
        found.append(Component(f"{kind}.layers", kind, cell_eids(kind) + ARCH_EIDS, ("out",) + state_names(kind),
                               lambda data, k: draw_layers_case(k)(data), layers_oracle,
                               {"out": "seq.many_to_many", "h": "seq.many_to_one", "C": "seq.many_to_one"}))
        found.append(Component(f"{kind}.seq2seq", kind, cell_eids(kind) + ("rnn.output", "seq.seq2seq"), ("h", "y"),
                               lambda data, k: draw_seq2seq_case(k)(data), seq2seq_oracle,
                               {"h": "seq.seq2seq", "y": "rnn.output"}))
    return found


def _attention_components():
    return [
        Component("attention", "attention", ("self.attention", "mask.given"), ("out",), att.draw_attention,
                  att.attention_oracle, {"out": "self.attention", "weights": "self.attention"},
                  variants=("attn.unscaled",) + att.MASK_FORMS),
        Component("attention.causal", "attention", ("mask.causal",), ("out",), att.draw_causal, att.causal_oracle,
                  {"out": "mask.causal", "weights": "mask.causal"}, variants=("mask.causal_lower_right",)),
        Component("mha", "attention", ("self.qkv", "mha.head", "mha.output", "mask.given", "mask.key_padding"),
                  ("out",), att.draw_mha, att.mha_oracle,
                  {"out": "mha.output", "heads": "mha.head", "weights": "mha.head", "mean_weights": "mha.head"},
                  variants=att.MASK_FORMS, shared=("attn_mask",)),
        Component("attn.seq2seq", "attention", ("attn.score", "attn.weights", "attn.context"), ("context",),
                  att.draw_seq2seq_attention, att.seq2seq_attention_oracle,
                  {"context": "attn.context", "weights": "attn.weights", "scores": "attn.score"}),
        Component("pe", "pe", ("pe.sin", "pe.cos", "pe.input"), ("out",), att.draw_pe, att.pe_oracle,
                  {"out": "pe.input", "P": "pe.input"}, variants=("pe.concat", "pe.scaled_input"), shared=("P",),
                  replaces={"pe.concat": ("pe.sin", "pe.cos", "pe.input")}),
    ]


def _transformer_components():
    return [
        Component("layernorm", "transformer", ("layernorm",), ("out",), tf.draw_layernorm, tf.layernorm_oracle,
                  {"out": "layernorm"}),
        Component("ffn", "transformer", ("ffn",), ("out",), tf.draw_ffn, tf.ffn_oracle, {"out": "ffn"},
                  variants=("ffn.gelu",)),
        Component("encoder.layer", "transformer", ("self.qkv", "mha.head", "mha.output", "mask.key_padding",
                                                   "layernorm", "ffn", "enc.attn", "enc.ffn"),
                  ("out",), tf.draw_encoder_layer, tf.encoder_layer_oracle, {"Z": "enc.attn", "out": "enc.ffn"},
                  variants=tf.ENCODER_VARIANTS),
        Component("decoder.layer", "transformer", ("mask.causal", "mha.head", "mha.output", "layernorm", "ffn",
                                                   "dec.self", "dec.cross", "dec.ffn"),
                  ("out",), tf.draw_decoder_layer, tf.decoder_layer_oracle,
                  {"A": "dec.self", "B": "dec.cross", "out": "dec.ffn"}, variants=tf.DECODER_VARIANTS),
        Component("classifier", "transformer", ("classifier",), ("out",), tf.draw_classifier, tf.classifier_oracle,
                  {"out": "classifier"}),
        Component("encoder", "transformer", ("enc.attn", "enc.ffn", "mask.key_padding", "transformer.encoder"),
                  ("out",), tf.draw_stack(tf.draw_encoder_layer), tf.encoder_stack_oracle,
                  {"out": "transformer.encoder"}, variants=tf.ENCODER_VARIANTS),
        Component("decoder", "transformer", ("mask.causal", "dec.self", "dec.cross", "dec.ffn", "transformer.decoder"),
                  ("out",), tf.draw_stack(tf.draw_decoder_layer), tf.decoder_stack_oracle,
                  {"out": "transformer.decoder"}, variants=tf.DECODER_VARIANTS),
        Component("transformer", "transformer", ("pe.input", "pe.shift_right", "mask.key_padding",
                                                 "transformer.encoder", "transformer.decoder", "classifier",
                                                 "transformer.model"),
                  ("out",), tf.draw_model, tf.model_oracle, {"out": "transformer.model", "memory": "transformer.encoder"},
                  variants=tf.MODEL_VARIANTS, replaces={"stack.final_norm": ()}),
    ]


def _components():
    found = _recurrent_components() + _attention_components() + _transformer_components()
    return {c.name: c for c in sorted(found, key=lambda c: c.name)}


COMPONENTS: dict[str, Component] = _components()


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
    if sum(v in att.MASK_FORMS for v in names) > 1:
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
