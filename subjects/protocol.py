"""The subject protocol: what a subject IS, and how any implementation plugs into nlpspec. The
engine (properties/) reads subjects through this module alone; it imports nothing else of nlpspec.

A subject offers components. For each component it offers, `builders[component]` receives the
spec-named parameters (torch tensors on the suite's device and dtype, drawn by the suite) and
returns a callable that computes the component in the spec's conventions:

    fn = subject.builders["lstm.cell"](params)      # params: {"W_f": (H, H+I), "b_f": (H,), ...}
    out = fn(x=x, h_prev=h, C_prev=C)               # -> {"h": (B, H), "C": (B, H)} (+ gates)

Conventions: batch first, one row per example; weights as the article writes them (W acts on a
column [h_{t-1}, x_t], so W_f is H×(H+I) with the h columns first); biases are vectors. The
callable returns a dict keyed by spec names (a bare tensor for a one-output component). Extra
outputs named in the spec (the gates "f", "i", "Chat", "o", "r", "z", "htilde", "n") are checked
too, which points a failure at one equation.

Components of §1–2 (inputs -> outputs; H hidden, I input, V output, B batch, T and m lengths):

    rnn.cell        {W_hh, W_xh, b_h}            x (B,I), h_prev (B,H)            -> h
    rnn.output      {W_y, b_y}                   h (B,H)                          -> y (B,V)
    lstm.cell       {W_f,b_f,W_i,b_i,W_C,b_C,W_o,b_o}  x, h_prev, C_prev         -> h, C
    gru.cell        {W_r,b_r,W_z,b_z,W_h,b_h}    x, h_prev                        -> h
                    (variant gru.reset_after: {W_r,b_r,W_z,b_z,W_in,b_in,W_hn,b_hn})
    KIND.layers     {"layers": [[fwd] or [fwd, bwd] per layer]}, each a KIND.cell parameter dict
                    (layer l > 0 reads D·H inputs)    x (B,T,I), h_prev (B,L,D,H) [, C_prev]
                                                  -> out (B,T,D·H) (forward half first), h (B,L,D,H) [, C]
    KIND.seq2seq    {"encoder": cell params, "decoder": cell params, "output": {W_y, b_y}}
                    x (B,T,I), y_prev (B,m,J) decoder inputs, h_prev (B,H) [, C_prev (B,H)]
                                                  -> h (B,m,H) decoder states, y (B,m,V)

KIND is rnn, lstm or gru.

Components of §3–4 (n queries, m keys; d_k, d_v head widths; h heads, d_model = h·d_k):

    attention         {}                         q (B,n,d_k), k (B,m,d_k), v (B,m,d_v), mask (B,n,m)
                                                  -> out (B,n,d_v) [, weights (B,n,m)]
    attention.causal  {}  the subject's own causal mask: q, k, v -> out [, weights]; with the
                      variant mask.sliding_window also window (an int64 scalar, drawn from 1 to past
                      the sequence) unless the subject declares its own (constants={"mask.window": w})
    mha               {W_Q (h,d_model,d_k), W_K (h,d_kin,d_k), W_V (h,d_vin,d_v), W_O (h·d_v,d_model),
                       b_Q (h,d_k), b_K (h,d_k), b_V (h,d_v), b_O (d_model,)}
                      query (B,n,d_model), key (B,m,d_kin), value (B,m,d_vin), attn_mask (n,m),
                      key_padding_mask (B,m)   -> out (B,n,d_model) [, weights (B,h,n,m),
                                                  mean_weights (B,n,m), heads (B,n,h·d_v)]
    mha.causal        the mha weights and biases (d_kin = d_vin = d_model)
                      x (B,n,d_model), the subject's own causal mask -> out (B,n,d_model) [, weights (B,h,n,n)];
                      window as attention.causal's under mask.sliding_window
    attn.seq2seq      {}                         S (B,n,d_h) decoder states, H (B,m,d_h) encoder states
                                                  -> context (B,n,d_h) [, weights (B,n,m), scores (B,n,m)]
    pe                {}                         x (B,n,d) -> out = x + P (B,n,d) [, P (n,d)]
    layernorm         {gamma (d,), beta (d,)}    x (B,n,d) -> out (B,n,d)
    ffn               {W_1 (d,d_ff), b_1 (d_ff,), W_2 (d_ff,d), b_2 (d,)}   z (B,n,d) -> out (B,n,d)
    encoder.layer     {attn: mha weights, the FFN's, gamma_k, beta_k (k = 1, 2)}
                      x (B,n,d), key_padding_mask (B,n) -> out (B,n,d) [, Z (B,n,d)]
    decoder.layer     {self_attn, cross_attn: mha weights, the FFN's, gamma_k, beta_k (k = 1…3)}
                      y (B,m,d), memory (B,n,d) -> out (B,m,d) [, A, B (B,m,d)]
    decoder_only.layer {self_attn: mha weights, the FFN's, gamma_k, beta_k (k = 1, 2)}
                      x (B,n,d), its own causal mask -> out (B,n,d) [, Z (B,n,d)]
    encoder, decoder  {layers: [a layer's parameters, …] [, norm: {gamma_1, beta_1} with stack.final_norm]}
                      the layer's inputs -> out
    classifier        {W_c (d,V), b_c (V,)}      d (B,m,d) -> out (B,m,V), probabilities
    transformer       {src_embedding (V_src,d), tgt_embedding (V,d), encoder, decoder, W_c, b_c
                       [, encoder_norm, decoder_norm: {gamma_1, beta_1} with stack.final_norm]}
                      src (B,n), tgt (B,m) int64 token ids, src_key_padding_mask (B,n)
                      -> out (B,m,V) next-token probabilities [, memory (B,n,d)]
                      The subject shifts tgt right itself (⟨bos⟩ = token 0); the source padding
                      hides keys from the encoder and from cross-attention.

W_Q[h] acts on the right (X W_Q[h]), as in the original paper. A mask comes in the form the
subject declares: by default the article's additive float mask (0, or -inf where the key is
hidden); with the variant mask.bool_true_masked, booleans True where hidden (nn.MultiheadAttention);
with mask.bool_true_attends, booleans True where the query may attend (F.scaled_dot_product_attention).
A query with no key visible has no value in the spec: any value (NaN, zeros, …) is accepted there
and reported, but the call must succeed and the other rows must be right.

What a subject's component does less than, or otherwise than, the spec's is declared per component
in `declarations` ({component: Declaration(...)}, or a function of the component's options
returning one), scikit-learn-tags style:

    Declaration(lacks=("cross_attention", "key_padding"),   # what it cannot take (see below)
                constants={"layernorm.epsilon": 1e-12},     # the free constants it uses
                absent=("b_hn",),                           # parameters it structurally lacks: drawn as
                                                            # their identity (0 added, 1 a scale: γ)
                dtypes=(torch.float32,), devices=("cpu",),  # where it runs; other runs are skipped
                note="why, in words the summary shows")

The suite then draws only what the subject takes, evaluates the oracle with its constants, and
the summary says what was not checked because of a declaration. The capabilities a component may
lack are its `capabilities` (properties/*/components.py): mha: cross_attention, kv_widths, attn_mask,
key_padding; attention: mask, per_query_mask (lacking it: key padding only, the mask given as (B, 1, m)),
value_width; encoder.layer, encoder, transformer: key_padding. The constants are spec/constants.py's:
layernorm.epsilon, pe.base, mask.window (the sliding window, a whole number of positions).

A subject that implements a named variant of the article says so in `variants`
({component: variant E-id, or a tuple of them}); it is then checked against that variant and
reported under its name. `expected_failures` maps a check id ("lstm.cell-oracle") to the reason; one that
passes is reported as stale. `options` lists implementation knobs the suite sweeps
({component: {"batch_first": [True, False]}}); each value reaches the builder as a keyword.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Builder = Callable[..., Callable[..., Any]]


@dataclass(frozen=True)
class Declaration:
    """What one component of a subject takes and uses, where it differs from the spec's full contract."""

    lacks: tuple[str, ...] = ()          # capabilities it does not have: those cases are not drawn
    constants: dict[str, float] = field(default_factory=dict)  # free constants (spec/constants.py)
    absent: tuple[str, ...] = ()         # parameter names it has no such parameter for: drawn as their
                                         # identity (0 if the spec adds it, 1 if it scales by it), not judged
    dtypes: tuple | None = None          # torch dtypes it runs in (None: any)
    devices: tuple[str, ...] | None = None  # device types it runs on ("cpu", "cuda"; None: any)
    note: str = ""                       # why, in the subject's words (shown with the declaration)

    def not_run(self, dtype, device) -> str:
        """Why a run in this dtype on this device is not for it ("" if it is)."""
        if self.dtypes is not None and dtype not in self.dtypes:
            return f"declared to run in {', '.join(str(d).replace('torch.', '') for d in self.dtypes)} only"
        if self.devices is not None and device.type not in self.devices:
            return f"declared to run on {', '.join(self.devices)} only"
        return ""


@dataclass
class Subject:
    """An implementation under test: a name and a builder per component it offers."""

    name: str
    builders: dict[str, Builder]
    version: str = ""
    variants: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    expected_failures: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, list]] = field(default_factory=dict)
    declarations: dict[str, Declaration | Callable[[dict], Declaration]] = field(default_factory=dict)

    def offers(self, component: str) -> bool:
        return component in self.builders

    def declaration(self, component: str, options: dict | None = None) -> Declaration:
        """What the subject declares of `component` under these options (Declaration() if nothing)."""
        found = self.declarations.get(component, Declaration())
        return found(options or {}) if callable(found) else found


class SubjectLoadError(Exception):
    """A subject that cannot be used as given (a name that names nothing usable, a declaration the
    suite does not know); the message is one line for the user."""


class OptionSet(dict):
    """One run's knobs (each reaches the builder as a keyword), with the name the subject gave them
    where they go together (`Subject.options`: {"sdpa_own_mask": {"attn": "sdpa", "masks": "none"}});
    "" where they are one combination of swept knobs."""

    def __init__(self, knobs=(), name: str = ""):
        super().__init__(knobs)
        self.name = name


def option_label(options: dict, sep: str = ",") -> str:
    """How a run's options are shown: the set's name, else its knobs ("attn=sdpa,masks=none")."""
    return getattr(options, "name", "") or sep.join(f"{k}={v}" for k, v in options.items())


def named_sets(knobs: dict) -> bool:
    """Whether a component's options are named option sets ({name: {knob: value}}) rather than knobs
    to sweep ({knob: [values]})."""
    return bool(knobs) and all(isinstance(v, dict) for v in knobs.values())


def option_sets(subject: Subject, component) -> list[dict]:
    """Each named option set, or every combination of the subject's knobs, for this component (one
    with a `name`: properties' Component) ([{}] when it has none)."""
    given = subject.options.get(component.name, {})
    if named_sets(given):
        return [OptionSet(knobs, name) for name, knobs in given.items()]
    combos = [{}]
    for name, values in given.items():
        combos = [c | {name: v} for c in combos for v in values]
    return [OptionSet(c) for c in combos]
