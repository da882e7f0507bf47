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
"""
from __future__ import annotations

from sympy import Eq, Function, IndexedBase, MatrixSymbol, symbols

from .equation import compose, define
from .functions import GELU, LayerNorm, ReLU, Rows
from .functions import RowSoftmax as softmax

n, m, d_model, d_ff, V = symbols("n m d_model d_ff V", integer=True, positive=True)


def row(name, width):
    return MatrixSymbol(name, 1, width)


X = MatrixSymbol("X", n, d_model)
gamma, beta = row("gamma", d_model), row("beta", d_model)
LAYERNORM = define("layernorm", "Each position's features are normalised to mean 0 and variance 1 (biased "
                   "variance, ε = 1e-5 added), then scaled by γ and shifted by β.",
                   MatrixSymbol("N", n, d_model), LayerNorm(X, gamma, beta))

Z = MatrixSymbol("Z", n, d_model)
W_1, b_1, W_2, b_2 = MatrixSymbol("W_1", d_model, d_ff), row("b_1", d_ff), MatrixSymbol("W_2", d_ff, d_model), \
    row("b_2", d_model)


def ffn(z, rows, activation=ReLU):
    return activation(z * W_1 + Rows(b_1, rows)) * W_2 + Rows(b_2, rows)


FFN = define("ffn", "Two position-wise linear layers with a ReLU between them.", MatrixSymbol("F", n, d_model),
             ffn(Z, n))
FFN_GELU = define("ffn.gelu", "Variant (BERT, GPT-2): GELU instead of ReLU.", MatrixSymbol("F", n, d_model),
                  ffn(Z, n, GELU), variant_of="ffn")

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
