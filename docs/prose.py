"""The prose of each section: what its equations do and why, the article's advantages and drawbacks
of each model, stated as measurements where the site makes them (figures.gradient_norms,
figures.rnn_against_attention) or reads them off the spec (the cells' parameter counts).

Every E-id the prose names is a link checked against the catalogue (`ref`), so the prose cannot
cite an equation the spec does not state."""
from __future__ import annotations

import sympy as sp

from nlpspec.spec import CATALOGUE
from nlpspec.spec.recurrent import CELLS

from . import catalogue


def ref(eid: str) -> str:
    """A link to an E-id's section; an E-id the catalogue lacks is an error of the prose."""
    if eid not in CATALOGUE:
        raise KeyError(f"the prose names {eid!r}, which the spec does not define")
    return f'<a href="{catalogue.section_of(eid)}.html#{eid}"><code>{eid}</code></a>'


def parameters(kind: str, H: int, I: int) -> int:
    """How many weights and biases a cell of the spec holds, read off its equations' shapes."""
    found = {s for eq in CELLS[kind] for s in eq.inputs if s.name.startswith(("W", "b"))}
    return sum(int(sp.prod(s.shape).subs({sp.Symbol(n, integer=True, positive=True): v
                                          for n, v in (("H", H), ("I", I))})) for s in found)


def _cells(measured: dict) -> str:
    norms = measured.get("gradient_norms", {})
    T = norms.get("T")
    vanishing = (f" The figure below measures it: after T = {T} steps of a vanilla RNN whose recurrent weight has "
                 f"spectral radius 0.9, ‖∂h<sub>T</sub>/∂h<sub>0</sub>‖ is {norms['rnn 0.9']:.1e}; at 1.1 it is {norms['rnn 1.1']:.1e}."
                 if T else "")
    kept = (f" With the forget gate's bias at 3 (the gate nearly open), the LSTM's ‖∂h<sub>T</sub>/∂h<sub>0</sub>‖ after {T} steps is "
            f"{norms['lstm 3']:.1e}, against {norms['lstm 0']:.1e} with the bias at 0." if T else "")
    H, I = 256, 128
    lstm, gru, rnn = (parameters(k, H, I) for k in ("lstm", "gru", "rnn"))
    return f"""
<h2>Why gates</h2>
<p>A vanilla RNN cell ({ref("rnn.cell")}) folds the input x<sub>t</sub> into the state it carries with one affine map and a
tanh, the same weights at every step; its output ({ref("rnn.output")}) is a softmax of the state. That is how it
takes order and the earlier inputs into account, the article's advantage. Its two drawbacks follow from the same
chain. Step t cannot start before step t−1 has finished, so the work does not parallelise over the sequence (the
attention page measures what that costs). And the gradient that reaches step 0 from step T is a product of T
Jacobians, each the recurrent weight scaled by tanh's derivative: it shrinks or grows geometrically.{vanishing}</p>
<p>The LSTM ({ref("lstm.forget")}, {ref("lstm.input")}, {ref("lstm.candidate")}, {ref("lstm.cell")},
{ref("lstm.output")}, {ref("lstm.hidden")}) adds a cell state C<sub>t</sub> that is updated by addition: C<sub>t</sub> keeps f<sub>t</sub> of
C<sub>t−1</sub> and adds i<sub>t</sub> of a candidate. Where the forget gate is near 1 the cell path passes C<sub>t−1</sub> on almost
unchanged, and its gradient with it: the highway of the article.{kept} The three gates are sigmoids in (0, 1), each
read from [h<sub>t−1</sub>, x<sub>t</sub>].</p>
<p>The GRU ({ref("gru.reset")}, {ref("gru.update")}, {ref("gru.candidate")}, {ref("gru.hidden")}) merges the cell
state into the hidden state and the forget and input gates into one update gate z<sub>t</sub>, which blends the old state
with a candidate that sees the old state through the reset gate r<sub>t</sub>. It is lighter: with H = {H} hidden units and
I = {I} inputs, the spec's shapes give the LSTM {lstm:,} weights and biases, the GRU {gru:,}, the vanilla cell
{rnn:,}. Libraries differ in where the reset gate acts: cuDNN and Keras apply it after the recurrent product
({ref("gru.reset_after")}), a different function that the suite reports as a named variant.</p>
"""


def _architectures(measured: dict) -> str:
    return f"""
<h2>Chaining cells</h2>
<p>A task decides how cells are chained. Many-to-many ({ref("seq.many_to_many")}) applies one cell at every step and
reads an output at each; many-to-one ({ref("seq.many_to_one")}) keeps only the last state, for a classifier;
one-to-many feeds one input and lets the chain generate. The seq2seq model ({ref("seq.seq2seq")}), the article's
machine-translation example, runs an encoder chain over x<sub>1</sub> … x<sub>T</sub> and starts a decoder chain from its last state
h<sub>T</sub>: the decoder sees the whole input only through that one vector, the bottleneck that attention removes.</p>
<p>Cells can also be stacked ({ref("seq.stacked")}: the state sequence of layer l is the input of layer l+1) or run
in both directions ({ref("seq.bidirectional")}: a second chain reads the reversed sequence and the two states are
concatenated). Each adds a full chain of computation, which is why such models usually stop at two or three
layers: a better representation for more work.</p>
"""


def _attention(measured: dict) -> str:
    timing = measured.get("rnn_against_attention", {})
    speed = ""
    if timing:
        T, rnn, attention = timing["lengths"][-1], timing["rnn"][-1], timing["attention"][-1]
        growth = timing["attention"][-1] / timing["attention"][-2]
        speed = (f" On this machine, at {T} positions, the reference RNN layer took {rnn * 1e3:.1f} ms and one "
                 f"self-attention layer {attention * 1e3:.1f} ms ({rnn / attention:.0f} times less); doubling the length "
                 f"from {timing['lengths'][-2]} multiplied attention's time by {growth:.1f}, its T² cost showing.")
    return f"""
<h2>From a bottleneck to attention</h2>
<p>Seq2seq attention lets each decoder state s<sub>i</sub> look at every encoder state h<sub>j</sub>: a scaled dot product scores the pair
({ref("attn.score")}), a softmax over the encoder positions turns the scores into weights ({ref("attn.weights")}),
and the weighted sum of the encoder states is the context fed to the next decoder step ({ref("attn.context")}). The
decoder then draws on the part of the input that matters at each step, wherever it sits, at the price of one more
computation with learned weights: the article's advantage and drawback.</p>
<p>Self-attention drops the recurrence. Every token is projected to a query, a key and a value ({ref("self.qkv")});
each query is scored against every key, the scores divided by √d<sub>k</sub> so that their spread does not grow with the
width, and the softmax weights average the values ({ref("self.attention")}). A mask adds −∞ to the scores of the keys a
query may not see: the future in a decoder ({ref("mask.causal")}), padding ({ref("mask.key_padding")}). Multi-head
attention runs h such attentions with their own projections ({ref("mha.head")}) and projects their concatenation
({ref("mha.output")}), so that heads can attend differently, to near and far tokens. Since attention is blind to
order, sinusoids of the position are added to the embeddings ({ref("pe.input")}).</p>
<p>All positions are computed in one pass of a few matrix products rather than T dependent steps.{speed}</p>
"""


def _transformer(measured: dict) -> str:
    return f"""
<h2>Encoder, decoder, classifier</h2>
<p>The Transformer stacks N encoder layers and N decoder layers. An encoder layer wraps multi-head self-attention
and a two-layer feed-forward network ({ref("ffn")}) each in a residual connection followed by LayerNorm
({ref("enc.attn")}, {ref("enc.ffn")}; LayerNorm: {ref("layernorm")}). A decoder layer reads the right-shifted
targets ({ref("pe.shift_right")}) through causally masked self-attention ({ref("dec.self")}), then attends to the
last encoder's output ({ref("dec.cross")}), then applies its own feed-forward network ({ref("dec.ffn")}); the
classifier turns its output into next-token probabilities ({ref("classifier")}). The mask and the shift together
make the prediction at position i depend only on the targets before i.</p>
<p>The article's advantages: every token's representation is built from the tokens it attends to, and all tokens are
processed in parallel, not in a chain. Its drawbacks: the computation is heavy (attention's cost grows with the
square of the length, measured on the attention page) and training needs much data, which pre-trained models
amortise. Real libraries mostly normalise before each sublayer rather than after it (pre-LN, GPT-2 and
nn.Transformer(norm_first=True): {ref("enc.attn.pre_ln")}, with a last LayerNorm on the stack,
{ref("stack.final_norm")}); the suite checks each as a named variant of the article's post-LN layer.</p>
"""


SECTIONS = {"recurrent-cells": _cells, "rnn-architectures": _architectures, "attention": _attention,
            "transformer": _transformer}


def section(page: str, measured: dict) -> str:
    """The prose of a section page, with the measurements the build made (`measured`: figure name -> values)."""
    return SECTIONS[page](measured)
