"""A component's parameters as the checks name them: the E-id whose equation reads one, a tree with
one replaced, and whether the subject declares one absent (properties/engine/absent.py)."""
from __future__ import annotations

from nlpspec.spec import CATALOGUE

from .engine.check import all_eids
from .engine.harness import Harness


def parameter_eid(h: Harness, path: str) -> str:
    """The E-id whose equation reads the parameter at `path` (by its last name), else the component."""
    name = path.rsplit(".", 1)[-1].split("[")[0]
    for eid in all_eids(h):
        entry = CATALOGUE.get(eid)
        if any(getattr(s, "name", None) == name for s in getattr(entry, "inputs", ())):
            return eid
    return h.component.name


def replaced(tree, path: str, value, prefix=""):
    """tree with the array at `path` (as trees.leaves names it) replaced by value."""
    if isinstance(tree, dict):
        return {k: replaced(v, path, value, f"{prefix}.{k}" if prefix else k) for k, v in tree.items()}
    if isinstance(tree, list):
        return [replaced(v, path, value, f"{prefix}[{i}]") for i, v in enumerate(tree)]
    return value if prefix == path else tree


def declared_absent(h: Harness, path: str) -> bool:
    """Whether the parameter at `path` (trees.leaves's name, at any depth) is one the subject
    declares absent: drawn as its identity, neither changed nor its gradient judged."""
    return path.rsplit(".", 1)[-1].split("[")[0] in h.declaration.absent
