"""§3 Attention: seq2seq attention, self-attention, multi-head attention, and masks.

Sequences are matrices with one row per position: X is n×d_x (n queries), a memory is m×d
(m keys). Weights act on the right, as in the original paper: Q = X W_Q with W_Q of d_x×d_k
(the article's q_i = W_Q x_i is the same map, written for one column). A multi-head weight has
one such matrix per head; the oracle carries heads as a leading axis, so one compiled function
computes every head at once.

Causal alignment when n ≠ m: query i sees keys j ≤ i, counted from the first of each (upper
left, as PyTorch's `is_causal`); FlashAttention aligns the last query with the last key (lower
right), the named variant mask.causal_lower_right. The sliding-window variant mask.sliding_window
(Mistral, Qwen2, Gemma's local layers) hides, besides the later keys, those before a window of w:
query i sees keys i - w < j <= i. The window w is a constant (spec/constants.py, mask.window): a
subject that fixes it (a config's sliding_window) declares it, and one that takes it as an input
is given one drawn per case. With mask.causal_lower_right (a KV cache: the n queries are the last n
of the m positions) the window ends at the aligned key i + m - n, as Hugging Face's masks count it
(positions, not rows): the two variants together are that mask (`causal_equation`). A query that no key may be seen by (a row of
the mask all -∞) has no value in the article's math: its softmax is 0/0, NaN in the oracle, and
the suite does not compare that row (see properties/attention/checks.py, fully_masked_row).

The functions at the end are the oracle of what the equations compose: which keys the masks hide
(`hidden_keys`, from the masks' own definitions), attention's weights, and multi-head attention.
"""
from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, device
from sympy import MatrixSymbol, Transpose, sqrt, symbols

from .equation import define
from .constants import in_force
from .equation import Equation
from .functions import CausalMask, GivenMask, KeyPaddingMask, Rows, SlidingWindowMask
from .functions import RowSoftmax as softmax
from .oracle import compile_equation, compile_mask, evaluate_chain

n, m, d_x, d_k, d_v, d_h = symbols("n m d_x d_k d_v d_h", integer=True, positive=True)
d_model, d_kin, d_vin, d_z = symbols("d_model d_kin d_vin d_z", integer=True, positive=True)

# --- seq2seq attention: decoder states s_i against encoder states h_j --------------------------
S, H_enc = MatrixSymbol("S", n, d_h), MatrixSymbol("H_enc", m, d_h)
E, alpha, C_ctx = MatrixSymbol("E", n, m), MatrixSymbol("alpha", n, m), MatrixSymbol("C_ctx", n, d_h)

ATTN_SCORE = define("attn.score", "Each decoder state s_i is scored against every encoder state h_j by a "
                    "dot product scaled by 1/√d_h.", E, S * H_enc.T / sqrt(d_h))
ATTN_WEIGHTS = define("attn.weights", "The scores of each decoder state are turned into weights by a softmax "
                      "over the encoder positions j.", alpha, softmax(E))
ATTN_CONTEXT = define("attn.context", "The context c_i is the weighted sum of the encoder states; it is fed to "
                      "the next decoder cell with its input.", C_ctx, alpha * H_enc)

# --- self-attention ----------------------------------------------------------------------------
X = MatrixSymbol("X", n, d_x)
W_Q, W_K, W_V = MatrixSymbol("W_Q", d_x, d_k), MatrixSymbol("W_K", d_x, d_k), MatrixSymbol("W_V", d_x, d_v)
Q, K, V = MatrixSymbol("Q", n, d_k), MatrixSymbol("K", m, d_k), MatrixSymbol("V", m, d_v)
A = MatrixSymbol("A", n, d_v)
B_mask = MatrixSymbol("B_mask", n, m)  # 1 where key j is hidden from query i, else 0

SELF_QKV = define("self.qkv", "Every token is projected to a query, a key and a value.",
                  (MatrixSymbol("Q", n, d_k), MatrixSymbol("K", n, d_k), MatrixSymbol("V", n, d_v)),
                  (X * W_Q, X * W_K, X * W_V))
SELF_ATTENTION = define("self.attention", "Each query is compared with every key; the softmax of the scaled "
                        "scores weights the values.", A, softmax(Q * K.T / sqrt(d_k)) * V)
MASK_CAUSAL = define("mask.causal", "A causal mask (-∞ at keys j > i, 0 elsewhere) is added to the scores "
                     "before the softmax: position i attends to positions up to i only.",
                     A, softmax(Q * K.T / sqrt(d_k) + CausalMask(n, m)) * V)
MASK_GIVEN = define("mask.given", "A given mask (-∞ where B_ij ≠ 0, 0 elsewhere; key padding is the case of "
                    "whole columns) is added to the scores before the softmax.",
                    A, softmax(Q * K.T / sqrt(d_k) + GivenMask(B_mask)) * V)
padding = MatrixSymbol("p", m, 1)  # p_j = 1 where key j is padding, else 0
MASK_KEY_PADDING = define("mask.key_padding", "Padding keys (p_j ≠ 0) are hidden from every query: a mask of "
                          "whole columns, added to the scores before the softmax.",
                          A, softmax(Q * K.T / sqrt(d_k) + KeyPaddingMask(padding, n)) * V)
masked, attends = MatrixSymbol("M_masked", n, m), MatrixSymbol("M_attends", n, m)  # booleans
MASK_TRUE_MASKED = define("mask.bool_true_masked", "Variant (nn.MultiheadAttention): the mask comes as booleans, "
                          "True where key j is hidden from query i: M(B) with B = M_masked.",
                          A, softmax(Q * K.T / sqrt(d_k) + GivenMask(masked)) * V, variant_of="mask.given")
MASK_TRUE_ATTENDS = define("mask.bool_true_attends", "Variant (F.scaled_dot_product_attention): the mask comes as "
                           "booleans, True where query i may attend to key j: hidden where M_attends is False.",
                           A, softmax(Q * K.T / sqrt(d_k) + GivenMask(attends, hide_zero=True)) * V,
                           variant_of="mask.given")
UNSCALED = define("attn.unscaled", "Variant (T5): the scores are not divided by √d_k.",
                  A, softmax(Q * K.T + GivenMask(B_mask)) * V, variant_of="self.attention")
CAUSAL_LOWER_RIGHT = define("mask.causal_lower_right", "Variant (FlashAttention): query i sees keys "
                            "j <= i + m - n, the last query aligned with the last key.",
                            A, softmax(Q * K.T / sqrt(d_k) + CausalMask(n, m, lower_right=True)) * V,
                            variant_of="mask.causal")
SLIDING_WINDOW = define("mask.sliding_window", "Variant (Mistral, Qwen2): query i sees keys i - w < j <= i, "
                        "itself and the w - 1 before it; w, the window, is the constant mask.window (w >= m: "
                        "mask.causal). With mask.causal_lower_right, the window ends at key i + m - n.",
                        A, softmax(Q * K.T / sqrt(d_k) + SlidingWindowMask(n, m)) * V, variant_of="mask.causal")
# the two variants together (a KV cache under a sliding window): the catalogue's entry is the one above
SLIDING_WINDOW_LOWER_RIGHT = Equation(SLIDING_WINDOW.eid, SLIDING_WINDOW.statement, A,
                                      softmax(Q * K.T / sqrt(d_k) + SlidingWindowMask(n, m, lower_right=True)) * V,
                                      variant_of="mask.causal")


def causal_equation(lower_right=False, window=False) -> Equation:
    """The causal attention equation: mask.causal, aligned lower right, with a sliding window, or both."""
    return ((SLIDING_WINDOW_LOWER_RIGHT if lower_right else SLIDING_WINDOW) if window else
            CAUSAL_LOWER_RIGHT if lower_right else MASK_CAUSAL)

# --- multi-head attention ----------------------------------------------------------------------
Xq, Xk, Xv = MatrixSymbol("X_q", n, d_model), MatrixSymbol("X_k", m, d_kin), MatrixSymbol("X_v", m, d_vin)
Wq, Wk, Wv = MatrixSymbol("W_Q", d_model, d_k), MatrixSymbol("W_K", d_kin, d_k), MatrixSymbol("W_V", d_vin, d_v)
head, Z, W_O = MatrixSymbol("head", n, d_v), MatrixSymbol("Z_heads", n, d_z), MatrixSymbol("W_O", d_z, d_model)

b_Q, b_K, b_V = MatrixSymbol("b_Q", 1, d_k), MatrixSymbol("b_K", 1, d_k), MatrixSymbol("b_V", 1, d_v)
b_O = MatrixSymbol("b_O", 1, d_model)
MHA_HEAD = define("mha.head", "Each head attends with its own projections of the queries, keys and values, "
                  "each with a bias added to every row (the article writes none: biases 0); a mask, all 0 when "
                  "there is none, is added to the scores. b_K has no effect: it adds q_i·b_K to every score of "
                  "row i, which the softmax removes.",
                  head, softmax((Xq * Wq + Rows(b_Q, n)) * Transpose(Xk * Wk + Rows(b_K, m)) / sqrt(d_k)
                                + GivenMask(B_mask)) * (Xv * Wv + Rows(b_V, m)))
MHA_OUTPUT = define("mha.output", "The heads are concatenated, head 1 first, and projected by W_O (plus a bias "
                    "b_O on every row; 0 in the article).", MatrixSymbol("O", n, d_model), Z * W_O + Rows(b_O, n))


# --- the oracle of the compositions: NumPy on batches (…, rows, columns) ----------------------
def hidden_keys(n, m, causal=False, lower_right=False, given=None, padding=None, window=None) -> np.ndarray:
    """Which keys are hidden from which query: True at [..., i, j] where a mask in force adds -∞ to
    score e_ij, each as its equation defines it: mask.causal (mask.causal_lower_right with
    lower_right; mask.sliding_window with a window w), mask.given with B = given (…, n, m),
    mask.key_padding with p = padding (…, m)."""
    hidden = np.zeros((n, m), dtype=bool)
    if causal:
        with in_force({} if window is None else {"mask.window": window}):
            hidden = hidden | compile_mask(causal_equation(lower_right, window is not None))(n=n, m=m)
    if given is not None:
        hidden = hidden | compile_mask(MASK_GIVEN)(B_mask=given)
    if padding is not None:
        hidden = hidden | compile_mask(MASK_KEY_PADDING)(p=padding[..., None], n=n)
    return hidden


def identity_values(m: int, like):
    """V = I (m×m), in like's dtype and on its device: attention with these values returns its weights
    (A = softmax(·) I)."""
    return array_namespace(like).eye(m, dtype=like.dtype, device=device(like))


def on(like, array):
    """array (a mask made in NumPy) in like's namespace and on its device."""
    return array_namespace(like).asarray(array, device=device(like))


def undefined(value, hidden: np.ndarray):
    """value with NaN in every row of a query that sees no key (its softmax is 0/0). The product by
    the values cannot be trusted to carry the NaN: BLAS may give 0 for NaN times a zero matrix."""
    xp = array_namespace(value)
    rows = on(value, np.array(np.broadcast_to(hidden.all(axis=-1), value.shape[:-1])))
    return xp.where(rows[..., None], xp.asarray(np.nan, dtype=value.dtype, device=device(value)), value)


def attention(eq, hidden, **arrays) -> tuple:
    """An attention equation (mask.given, mask.causal or a variant of them) on batches: A, and the
    weights (A with V = I); hidden: the keys its mask hides, from hidden_keys."""
    fn = compile_equation(eq)
    eye = identity_values(arrays["K"].shape[-2], arrays["Q"])
    return undefined(fn(**arrays), hidden), undefined(fn(**{**arrays, "V": eye}), hidden)


def multi_head(p: dict, X_q, X_k, X_v, hidden, weights=False) -> dict:
    """mha.head and mha.output on batches (B, rows, d): "O" and "Z_heads" (the heads concatenated,
    head 1's columns first) and, with weights, each head's weights (B, h, n, m). p holds W_Q, W_K,
    W_V (heads first: h×d×d_k), W_O, and the biases b_Q, b_K, b_V (h×d_k, one row per head) and b_O
    (d_model); hidden (…, n, m), from hidden_keys. Every head is one compiled call: the heads ride
    on an axis of their own."""
    each_head, output = compile_equation(MHA_HEAD), compile_equation(MHA_OUTPUT)
    xp = array_namespace(X_q)
    xq, xk, xv, per_head = X_q[:, None], X_k[:, None], X_v[:, None], np.expand_dims(hidden, -3)
    b_Q, b_K, b_V = (p[name][:, None, :] for name in ("b_Q", "b_K", "b_V"))  # h×1×d: a row per head
    heads = each_head(X_q=xq, X_k=xk, X_v=xv, W_Q=p["W_Q"], W_K=p["W_K"], W_V=p["W_V"], b_Q=b_Q, b_K=b_K, b_V=b_V,
                      B_mask=per_head)
    B, h, n, d_v = heads.shape
    concatenated = xp.reshape(xp.permute_dims(heads, (0, 2, 1, 3)), (B, n, h * d_v))
    found = {"O": undefined(output(Z_heads=concatenated, W_O=p["W_O"], b_O=xp.reshape(p["b_O"], (1, -1))), hidden),
             "Z_heads": undefined(concatenated, hidden)}
    if weights:
        eye = identity_values(xk.shape[-2], xq)
        found["weights"] = undefined(each_head(X_q=xq, X_k=xk, X_v=eye, W_Q=p["W_Q"], W_K=p["W_K"], W_V=eye, b_Q=b_Q,
                                               b_K=b_K, b_V=xp.zeros_like(eye[:1]), B_mask=per_head), per_head)
    return found


def seq2seq_attention(S, H_enc) -> dict:
    """attn.score, attn.weights and attn.context in turn: E, alpha and C_ctx."""
    env = evaluate_chain((ATTN_SCORE, ATTN_WEIGHTS, ATTN_CONTEXT), {"S": S, "H_enc": H_enc})
    return {name: env[name] for name in ("E", "alpha", "C_ctx")}
