"""The Transformer family (§4): LayerNorm, the FFN, the layers, the stacks, the classifier and the
model, and the checks that apply."""
from .checks import yield_checks
from .components import COMPONENTS

__all__ = ["COMPONENTS", "yield_checks"]
