"""The recurrent family (§1–2): the cells, their layers and seq2seq, and the checks that apply."""
from .checks import yield_checks
from .components import COMPONENTS

__all__ = ["COMPONENTS", "yield_checks"]
