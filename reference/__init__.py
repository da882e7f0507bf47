"""Plain PyTorch implementations of the article's §1–2 equations (imports torch only)."""
if __name__ != "nlpspec.reference":  # one name per module: the folder is mapped into nlpspec (pyproject.toml)
    raise ImportError(f"import nlpspec.reference, not {__name__}: the checkout's reference/ is the package nlpspec.reference")
from .cells import gru_cell, gru_cell_reset_after, lstm_cell, rnn_cell, rnn_output
from .sequences import bidirectional, seq2seq, stacked, unroll

__all__ = ["bidirectional", "gru_cell", "gru_cell_reset_after", "lstm_cell", "rnn_cell", "rnn_output",
           "seq2seq", "stacked", "unroll"]
