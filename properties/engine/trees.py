"""A case is a tree of arrays (dicts and lists of NumPy arrays): mapping over it, its leaves, and
the same tree as torch tensors."""
from __future__ import annotations

import torch


def nested_map(fn, tree):
    if isinstance(tree, dict):
        return {k: nested_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [nested_map(fn, v) for v in tree]
    return fn(tree)


def leaves(tree, prefix=""):
    """(path, array) for every array of a nested case."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, f"{prefix}{k}" if not prefix else f"{prefix}.{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, tree


def as_tensors(tree, dtype: torch.dtype, device, grad: bool = True):
    """The float arrays of a case as torch tensors (requiring grad); masks and token ids stay NumPy,
    as the oracle reads them."""
    return nested_map(lambda a: torch.tensor(a, dtype=dtype, device=device, requires_grad=grad)
                      if a.dtype.kind == "f" else a, tree)
