"""The attention family (§3–4): attention, causal and multi-head attention, seq2seq attention,
positional encoding, and the checks that apply."""
from .checks import yield_checks
from .components import COMPONENTS

__all__ = ["COMPONENTS", "yield_checks"]
