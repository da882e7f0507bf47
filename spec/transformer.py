"""§4 The Transformer: layer normalisation, the feed-forward block, the encoder and decoder layers
(post-LN, as the article draws them), and the classifier.

Rows are positions: X is n×d_model (the encoder's input, X + P), Y is the decoder's (m×d_model,
shift_right(targets) + P). A sublayer's multi-head output is an input here, named after what it
attends: O_self = MultiHead(X, X, X) (mha.head and mha.output on X), O_mask = MultiHead(Y, Y, Y; M)
with the causal mask, O_cross = MultiHead(A, E, E); likewise F_Z = FFN(Z) and F_B = FFN(B). Biases
are 1×d rows added to every position.
"Eval mode" throughout: no dropout (a subject that drops is non-deterministic, not wrong).

Variants: pre-LN (LN inside the residual branch: X + MultiHead(LN(X)), PyTorch's norm_first,
GPT-2), GELU instead of ReLU in the FFN, and the classifier's W tied to the embedding (W = Emb^T).

An extension, not in the article: RMSNorm (rmsnorm; Zhang & Sennrich 2019, "Root Mean Square Layer
Normalization", NeurIPS), the norm of LLaMA, T5 and Qwen: y = x / √(mean(x²) + ε) ⊙ γ, no centring
and no β. Its ε (rmsnorm.epsilon) is 1e-6 by default, LLaMA's, T5's and Qwen's (the paper's code uses
1e-8; nn.RMSNorm's default is the dtype's machine epsilon, no one constant).

The functions at the end are the oracle of the compositions: the sublayers around their
multi-head attention or FFN, the layers, the stacks, the right shift and the whole model.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from sympy import Eq, Function, IndexedBase, MatrixSymbol, symbols
from sympy.matrices.expressions.matexpr import MatrixExpr

from . import positional
from .attention import hidden_keys, multi_head
from .constants import declare
from .equation import compose, define
from .functions import GELU, GELUTanh, LayerNorm, ReLU, Rows, stated
from .kernels import kernel
from .functions import RowSoftmax as softmax
from .oracle import compile_equation

n, m, d_model, d_ff, V = symbols("n m d_model d_ff V", integer=True, positive=True)


def row(name, width):
    return MatrixSymbol(name, 1, width)


X = MatrixSymbol("X", n, d_model)
gamma, beta = row("gamma", d_model), row("beta", d_model)
LAYERNORM = define("layernorm", "Each position's features are normalised to mean 0 and variance 1 (biased "
                   "variance, ε = 1e-5 added), then scaled by γ and shifted by β.",
                   MatrixSymbol("N", n, d_model), LayerNorm(X, gamma, beta))


# --- RMSNorm: an extension, not in the article (Zhang & Sennrich 2019) --------------------------
RMS_EPSILON = declare("rmsnorm.epsilon", sp.Rational(1, 10**6), lambda v: v >= 0,
                      "0 or more (it is added to a mean square)")


class RMSNorm(MatrixExpr):
    """Each row x scaled to unit root mean square over its features: γ ⊙ x / √(mean(x²) + ε), γ 1×d."""

    EPSILON = RMS_EPSILON

    def __new__(cls, x, gamma):
        return super().__new__(cls, sp.sympify(x), sp.sympify(gamma))

    @property
    def shape(self):
        return self.args[0].shape

    def mean_square(self, i, **kwargs):
        """The mean of row i's squares over its d features."""
        x = self.args[0]
        k = sp.Dummy("k", integer=True)
        return sp.Sum(x._entry(i, k, **kwargs) ** 2, (k, 0, x.shape[1] - 1)).doit() / x.shape[1]

    def scaled(self, i, j, mean_square, eps=EPSILON, **kwargs):
        x, gamma = self.args
        return gamma._entry(0, j, **kwargs) * x._entry(i, j, **kwargs) / sp.sqrt(mean_square + eps)

    def _entry(self, i, j, **kwargs):
        return self.scaled(i, j, self.mean_square(i, **kwargs), **kwargs)

    @classmethod
    def definition(cls, shape=(n, d_model)) -> tuple:
        """RMSNorm(a)_ij = γ_j a_ij / √(r_i + ε), then r_i (the row's mean square) and ε."""
        i, j = symbols("i j", integer=True)
        norm = cls(MatrixSymbol("a", *shape), MatrixSymbol("gamma", 1, shape[1]))
        r, eps = sp.Symbol(r"r_{i}"), sp.Symbol(r"\varepsilon")
        return stated(norm, norm.scaled(i, j, r, eps)) + tuple(
            sp.Eq(lhs, rhs, evaluate=False) for lhs, rhs in ((r, norm.mean_square(i)), (eps, cls.EPSILON)))

    def defined(self) -> tuple:
        return type(self).definition(self.shape)

    def _latex(self, printer):
        x, gamma = (printer._print(a) for a in self.args)
        return rf"\operatorname{{RMSNorm}}_{{{gamma}}}\left({x}\right)"

    def _numpycode(self, printer):
        x, gamma = (printer._print(a) for a in self.args)
        return f"_rmsnorm({x}, {gamma}, _constant('rmsnorm.epsilon'))"


@kernel
def rmsnorm(k, x, gamma, eps):
    """RMSNorm's kernel, over the last axis: γ x / √(mean(x²) + ε), in x's dtype."""
    xp = k.xp
    with k.quiet():  # float16: squares past 256 overflow, a zero row with ε = 0 is 0/0
        return gamma * (x / xp.sqrt(xp.mean(x * x, axis=-1, keepdims=True) + eps))


RMSNORM = define("rmsnorm", "Extension (RMSNorm; Zhang & Sennrich 2019; LLaMA, T5, Qwen), not in the article: each "
                 "position's features divided by their root mean square (ε = 1e-6 added to the mean square), "
                 "then scaled by γ; no centring, no β.", MatrixSymbol("N", n, d_model), RMSNorm(X, gamma))

Z = MatrixSymbol("Z", n, d_model)
W_1, b_1, W_2, b_2 = MatrixSymbol("W_1", d_model, d_ff), row("b_1", d_ff), MatrixSymbol("W_2", d_ff, d_model), \
    row("b_2", d_model)


def ffn(z, rows, activation=ReLU):
    return activation(z * W_1 + Rows(b_1, rows)) * W_2 + Rows(b_2, rows)


FFN = define("ffn", "Two position-wise linear layers with a ReLU between them.", MatrixSymbol("F", n, d_model),
             ffn(Z, n))
FFN_GELU = define("ffn.gelu", "Variant (BERT; nn.Transformer(activation='gelu')): the exact (erf) GELU instead of "
                  "ReLU; GPT-2's tanh approximation is another function.", MatrixSymbol("F", n, d_model),
                  ffn(Z, n, GELU), variant_of="ffn")
FFN_GELU_TANH = define("ffn.gelu_tanh", "Variant (GPT-2's gelu_new; nn.GELU(approximate='tanh')): GELU's tanh "
                       "approximation, a (1 + tanh(√(2/π)(a + 0.044715 a³)))/2, instead of ReLU.",
                       MatrixSymbol("F", n, d_model), ffn(Z, n, GELUTanh), variant_of="ffn")

# --- encoder layer -----------------------------------------------------------------------------
gamma_1, beta_1, gamma_2, beta_2, gamma_3, beta_3 = (row(f"{p}_{k}", d_model) for k in (1, 2, 3)
                                                     for p in ("gamma", "beta"))
O_self = MatrixSymbol("O_self", n, d_model)
ENC_ATTN = define("enc.attn", "Self-attention's output is added to its input (residual), then normalised "
                  "(post-LN).", MatrixSymbol("Z", n, d_model), LayerNorm(X + O_self, gamma_1, beta_1))
F_Z = MatrixSymbol("F_Z", n, d_model)  # FFN(Z), the ffn equation on Z
ENC_FFN = define("enc.ffn", "The FFN's output is added to its input, then normalised; N such layers are "
                 "stacked, and the last one's E feeds every decoder.",
                 MatrixSymbol("E", n, d_model), LayerNorm(Z + F_Z, gamma_2, beta_2))

# --- decoder layer -----------------------------------------------------------------------------
Y, A, B_ = MatrixSymbol("Y", m, d_model), MatrixSymbol("A", m, d_model), MatrixSymbol("B", m, d_model)
O_mask, O_cross = MatrixSymbol("O_mask", m, d_model), MatrixSymbol("O_cross", m, d_model)
DEC_SELF = define("dec.self", "Masked (causal) self-attention over the decoder's input, residual, then LN.",
                  A, LayerNorm(Y + O_mask, gamma_1, beta_1))
DEC_CROSS = define("dec.cross", "Cross-attention: queries from A, keys and values from the encoder's output E "
                   "(no mask), residual, then LN.", B_, LayerNorm(A + O_cross, gamma_2, beta_2))
F_B = MatrixSymbol("F_B", m, d_model)  # FFN(B)
DEC_FFN = define("dec.ffn", "The FFN, residual, then LN; N decoders are stacked.",
                 MatrixSymbol("D", m, d_model), LayerNorm(B_ + F_B, gamma_3, beta_3))

# --- pre-LN variants: the sublayer reads LN(x), the residual adds the raw x -------------------
O_pre = MatrixSymbol("O_pre", n, d_model)  # MultiHead of LN(X): the sublayer applied to the normalised input
PRE_LN_ATTN = define("enc.attn.pre_ln", "Variant (norm_first=True, GPT-2): Z = X + MultiHead(LN(X)); here O_pre "
                     "is the attention of LN_1(X).", MatrixSymbol("Z", n, d_model), X + O_pre,
                     variant_of="enc.attn")
PRE_LN_FFN = define("enc.ffn.pre_ln", "Variant (norm_first=True): E = Z + FFN(LN(Z)).", MatrixSymbol("E", n, d_model),
                    Z + MatrixSymbol("F_Z_pre", n, d_model), variant_of="enc.ffn")

O_mask_pre, O_cross_pre = MatrixSymbol("O_mask_pre", m, d_model), MatrixSymbol("O_cross_pre", m, d_model)
PRE_LN_SELF = define("dec.self.pre_ln", "Variant (norm_first=True): A = Y + MultiHead(LN(Y), LN(Y), LN(Y); M).",
                     A, Y + O_mask_pre, variant_of="dec.self")
PRE_LN_CROSS = define("dec.cross.pre_ln", "Variant (norm_first=True): B = A + MultiHead(LN(A), E, E).",
                      B_, A + O_cross_pre, variant_of="dec.cross")
PRE_LN_DEC_FFN = define("dec.ffn.pre_ln", "Variant (norm_first=True): D = B + FFN(LN(B)).",
                        MatrixSymbol("D", m, d_model), B_ + MatrixSymbol("F_B_pre", m, d_model), variant_of="dec.ffn")

# --- classifier --------------------------------------------------------------------------------
D = MatrixSymbol("D", m, d_model)
W_c, b_c = MatrixSymbol("W_c", d_model, V), row("b_c", V)
CLASSIFIER = define("classifier", "A linear layer and a softmax over the vocabulary give the next-token "
                    "probabilities at every position.", MatrixSymbol("p", m, V), softmax(D * W_c + Rows(b_c, m)))
Emb = MatrixSymbol("Emb", V, d_model)  # the target embedding table, one row per token
TIED = define("classifier.tied", "Variant (the original paper, GPT-2): the classifier's weights are the target "
              "embedding, transposed.", MatrixSymbol("p", m, V), softmax(D * Emb.T + Rows(b_c, m)),
              variant_of="classifier")

# --- stacks and the whole model (compositions of the layers above) ----------------------------
l, i = symbols("l i", integer=True)
E_l, E_below, D_l, D_below = (IndexedBase(s) for s in ("E^{(l)}", "E^{(l-1)}", "D^{(l)}", "D^{(l-1)}"))
encode, decode, emb = Function(r"\mathrm{Encoder}_l"), Function(r"\mathrm{Decoder}_l"), Function(r"\mathrm{Emb}")
tokens, targets, P = IndexedBase("x"), IndexedBase("t"), IndexedBase("P")
E_N, D_N, prob = IndexedBase("E^{(N)}"), IndexedBase("D^{(N)}"), IndexedBase("p")

ENCODER_STACK = compose("transformer.encoder", "N encoder layers in sequence, each reading the one below; "
                        "E⁽⁰⁾ is the embedded source plus P.", Eq(E_l[i], encode(E_below, i)),
                        Eq(IndexedBase("E^{(0)}")[i], emb(tokens[i]) + P[i]))
SHIFT_RIGHT = compose("pe.shift_right", "The decoder reads the targets shifted right: ⟨bos⟩ (token 0) first, the "
                      "last target dropped, so position i sees targets before i only.",
                      Eq(IndexedBase("D^{(0)}")[i], emb(targets[i - 1]) + P[i]),
                      Eq(IndexedBase("D^{(0)}")[0], emb(symbols(r"\langle{}bos\rangle")) + P[0]))
DECODER_STACK = compose("transformer.decoder", "N decoder layers in sequence; every one attends to the LAST "
                        "encoder's output E⁽ᴺ⁾.", Eq(D_l[i], decode(D_below, E_N, i)))
MODEL = compose("transformer.model", "Token ids to next-token probabilities: embedding and P, the encoder stack, "
                "the decoder stack on the right-shifted targets, the classifier.",
                Eq(prob[i], Function(r"\mathrm{classifier}")(D_N[i])))
FINAL_NORM = define("stack.final_norm", "Variant (nn.Transformer, pre-LN models): a last LayerNorm after each "
                    "stack, E = LN(E⁽ᴺ⁾) and D = LN(D⁽ᴺ⁾).", MatrixSymbol("E", n, d_model),
                    LayerNorm(MatrixSymbol("E_N", n, d_model), row("gamma_f", d_model), row("beta_f", d_model)),
                    variant_of="transformer.model")



# --- the oracle of the compositions: NumPy on batches (B, rows, d_model) -----------------------
# A layer's parameters p carry the names above, biases and γ, β as 1×d rows: γ_k, β_k of its LN k;
# W_1, b_1, W_2, b_2 of its FFN; and under one key per attention ("attn" in an encoder layer,
# "self_attn" and "cross_attn" in a decoder layer) its W_Q, W_K, W_V (heads first) and W_O.
# `variants` is the set of named variants in force (E-ids: enc.attn.pre_ln, ffn.gelu, …).

def normalised(x, p, k):
    """LN_k of a layer: layernorm with γ_k and β_k."""
    return compile_equation(LAYERNORM)(X=x, gamma=p[f"gamma_{k}"], beta=p[f"beta_{k}"])


# E-id -> (post-LN equation, its input, its sublayer-output symbol, pre-LN equation, its symbol, LN index)
SUBLAYERS = {
    "enc.attn": (ENC_ATTN, "X", "O_self", PRE_LN_ATTN, "O_pre", 1),
    "dec.self": (DEC_SELF, "Y", "O_mask", PRE_LN_SELF, "O_mask_pre", 1),
    "dec.cross": (DEC_CROSS, "A", "O_cross", PRE_LN_CROSS, "O_cross_pre", 2),
    "enc.ffn": (ENC_FFN, "Z", "F_Z", PRE_LN_FFN, "F_Z_pre", 2),
    "dec.ffn": (DEC_FFN, "B", "F_B", PRE_LN_DEC_FFN, "F_B_pre", 3),
}


def sublayer(eid, x, p, inner, variants=()):
    """The residual block `eid` around inner (the sublayer, a function of its input): post-LN,
    LN(x + inner(x)), or, with the variant eid.pre_ln, x + inner(LN(x))."""
    post, x_name, o_name, pre, pre_name, k = SUBLAYERS[eid]
    if f"{eid}.pre_ln" in variants:
        return compile_equation(pre)(**{x_name: x, pre_name: inner(normalised(x, p, k))})
    return compile_equation(post)(**{x_name: x, o_name: inner(x), f"gamma_{k}": p[f"gamma_{k}"],
                                     f"beta_{k}": p[f"beta_{k}"]})


def feed_forward(p, z, variants=()):
    """ffn (ffn.gelu) with the layer's W_1, b_1, W_2, b_2."""
    ffn_eq = FFN_GELU if "ffn.gelu" in variants else FFN_GELU_TANH if "ffn.gelu_tanh" in variants else FFN
    return compile_equation(ffn_eq)(Z=z, **{name: p[name] for name in ("W_1", "b_1", "W_2", "b_2")})


def encoder_layer(p, X, padding=None, variants=()) -> dict:
    """enc.attn, then enc.ffn: Z and E. padding (B, n): the keys of mask.key_padding."""
    hidden = hidden_keys(X.shape[-2], X.shape[-2], padding=padding)
    Z = sublayer("enc.attn", X, p, lambda x: multi_head(p["attn"], x, x, x, hidden)["O"], variants)
    return {"Z": Z, "E": sublayer("enc.ffn", Z, p, lambda z: feed_forward(p, z, variants), variants)}


def decoder_layer(p, Y, E, padding=None, variants=()) -> dict:
    """dec.self (under mask.causal), dec.cross on the encoder's output E (padding (B, n): its keys
    of mask.key_padding), then dec.ffn: A, B and D."""
    m, n = Y.shape[-2], E.shape[-2]
    causal, crossed = hidden_keys(m, m, causal=True), hidden_keys(m, n, padding=padding)
    A = sublayer("dec.self", Y, p, lambda y: multi_head(p["self_attn"], y, y, y, causal)["O"], variants)
    B = sublayer("dec.cross", A, p, lambda a: multi_head(p["cross_attn"], a, E, E, crossed)["O"], variants)
    return {"A": A, "B": B, "D": sublayer("dec.ffn", B, p, lambda b: feed_forward(p, b, variants), variants)}


def causal_self_attention(p, X, window=None) -> dict:
    """Masked multi-head self-attention on one sequence (mha.head and mha.output under mask.causal,
    or mask.sliding_window with a window): the decoder's, and a decoder-only model's (GPT, nanoGPT's
    CausalSelfAttention; Mistral's and Qwen2's with a window)."""
    n = X.shape[-2]
    return multi_head(p, X, X, X, hidden_keys(n, n, causal=True, window=window), weights=True)


def decoder_only_layer(p, X, variants=()) -> dict:
    """A decoder-only (GPT-style) layer: dec.self, then the FFN block, no cross-attention. The FFN
    block is enc.ffn's equation on A (A + FFN(A), LN_2 around or inside it): Z and out."""
    Z = sublayer("dec.self", X, p, lambda x: causal_self_attention(p["self_attn"], x)["O"], variants)
    return {"Z": Z, "E": sublayer("enc.ffn", Z, p, lambda z: feed_forward(p, z, variants), variants)}


def stack_output(X, norm, variants):
    """A stack's output: its last layer's, or, with stack.final_norm, LN of it with `norm` (γ_1, β_1)."""
    return normalised(X, norm, 1) if "stack.final_norm" in variants else X


def encoder(layers, X, padding=None, variants=(), norm=None):
    """transformer.encoder: E⁽ᴺ⁾, each layer reading the one below (stack.final_norm: then LN)."""
    for p in layers:
        X = encoder_layer(p, X, padding, variants)["E"]
    return stack_output(X, norm, variants)


def decoder(layers, Y, E, padding=None, variants=(), norm=None):
    """transformer.decoder: D⁽ᴺ⁾, every layer attending to the same E (stack.final_norm: then LN)."""
    for p in layers:
        Y = decoder_layer(p, Y, E, padding, variants)["D"]
    return stack_output(Y, norm, variants)


def shift_right(tgt: np.ndarray) -> np.ndarray:
    """pe.shift_right: ⟨bos⟩ (token 0) first, the last target dropped."""
    return np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], axis=1)


def embedded(table, ids, variants=()):
    """The rows of table for the token ids, plus P (pe.input, or pe.scaled_input), in the table's dtype."""
    return compile_equation(positional.input_equation(variants))(X=table[ids])


def model(p, src, tgt, padding=None, variants=()) -> dict:
    """transformer.model: the encoder's output E and the probabilities p, from token ids src (B, n)
    and tgt (B, m); padding (B, n): the source's key padding. p holds src_embedding, tgt_embedding,
    the layers of "encoder" and "decoder", W_c and b_c (classifier.tied: no W_c), and with
    stack.final_norm an "encoder_norm" and a "decoder_norm" (γ_1, β_1)."""
    X = embedded(p["src_embedding"], src, variants)
    E = encoder(p["encoder"]["layers"], X, padding, variants, p.get("encoder_norm"))
    Y = embedded(p["tgt_embedding"], shift_right(tgt), variants)
    D = decoder(p["decoder"]["layers"], Y, E, padding, variants, p.get("decoder_norm"))
    if "classifier.tied" in variants:
        return {"E": E, "p": compile_equation(TIED)(D=D, Emb=p["tgt_embedding"], b_c=p["b_c"])}
    return {"E": E, "p": compile_equation(CLASSIFIER)(D=D, W_c=p["W_c"], b_c=p["b_c"])}
