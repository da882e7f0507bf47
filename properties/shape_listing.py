"""A component's named shapes (drawn_shapes.py's trees of `Array` and `Listed`) written as text: one
line per leaf ("W_f (H, H + I)"), a list's elements under an index and told apart by a condition on
it ("layers[l][d].W_xh (H, I) for l = 0, (H, D·H) for l ≥ 1"), a dict equal to another component's
parameters as a reference to them, and what a variant changes ("+ W_in (H, I)", "− W_h")."""
from __future__ import annotations

from .drawn_shapes import DIMENSIONS, Array, Listed


def shape_text(dims) -> str:
    """An array's shape as Python writes it: (B, n, d_model), (V,)."""
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def leaf_text(array: Array) -> str:
    return shape_text(array.dims) + {"float": "", "int64": " int64", "mask": " mask"}[array.dtype]


def _index(length: str, taken: set) -> str:
    """A list's index: its length's name in lower case (l < L, d < D) unless that names a dimension."""
    return next(o for o in (length.lower(), "i", "j", "k", "q") if len(o) == 1 and o.isalpha()
                and o not in DIMENSIONS and o not in taken)


def flat(node, path: str = "", condition: str = "", refs: dict | None = None, taken=None, seen=None):
    """(path, condition, text) per leaf: a list's elements under an index (layers[l]), the element
    runs that differ told apart by a condition on it (l = 0, l ≥ 1); a dict equal to another component's
    parameters (refs: name -> tree) as a reference to them."""
    taken = set() if taken is None else taken
    if isinstance(node, dict):
        found = reference(node, refs) if refs and path else None
        if found:
            yield path, condition, found
            return
        for key, value in node.items():
            yield from flat(value, f"{path}.{key}" if path else key, condition, refs, taken, seen)
    elif isinstance(node, Listed):
        index = _index(node.length, set(taken))
        if seen is not None and node.length not in seen.setdefault(index, []):
            seen[index].append(node.length)
        for g, (start, element) in enumerate(node.groups):
            if len(node.groups) == 1:
                where = ""
            elif g == len(node.groups) - 1:
                where = f"{index} = {start}" if start == 0 else f"{index} ≥ {start}"
            else:
                end = node.groups[g + 1][0] - 1
                where = f"{index} = {start}" if end == start else f"{start} ≤ {index} ≤ {end}"
            both = "; ".join(c for c in (condition, where) if c)
            yield from flat(element, f"{path}[{index}]", both, refs, taken | {index}, seen)
    else:
        yield path, condition, leaf_text(node)


def reference(node: dict, refs: dict) -> str | None:
    """"lstm.cell's parameters" where the dict is another component's parameters, or "… with I = J"
    where it is theirs with one dimension written otherwise (a decoder's input width, layer l's D·H);
    the fewest such renamings first."""
    found = []
    for name, tree in refs.items():
        renamed = _renaming(tree, node)
        if renamed is not None:
            found.append((len(renamed), name, renamed))
    if not found:
        return None
    _, name, renamed = min(found, key=lambda f: f[0])
    return f"{name}'s parameters" + (" with " + ", ".join(f"{a} = {b}" for a, b in renamed.items()) if renamed else "")


def _axes(node, path=""):
    """(path, axis, text) of every array axis of a tree, and its lists' lengths."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _axes(value, f"{path}.{key}")
    elif isinstance(node, Listed):
        yield path, "length", node.length
        for start, element in node.groups:
            yield from _axes(element, f"{path}[{start}]")
    else:
        for a, text in enumerate(node.dims):
            yield path, a, text
        yield path, "dtype", node.dtype


def _renaming(tree, node) -> dict | None:
    """{dimension: what the node has instead} that makes `tree` the node, term by term of each axis
    (I = D·H turns H + I into H + D·H), or None."""
    if not isinstance(tree, dict) or not tree:
        return None
    mine, theirs = list(_axes(tree)), list(_axes(node))
    if [(p, a) for p, a, _ in mine] != [(p, a) for p, a, _ in theirs]:
        return None
    renamed = {}
    for (_, _, was), (_, _, now) in zip(mine, theirs):
        if was != now:
            terms, others = was.split(" + "), now.split(" + ")
            if len(terms) != len(others):
                return None
            for a, b in zip(terms, others):
                if a != b:
                    if a not in DIMENSIONS or renamed.setdefault(a, b) != b:
                        return None
    rename = lambda text: " + ".join(renamed.get(t, t) for t in text.split(" + "))
    if any(rename(was) != now for (_, _, was), (_, _, now) in zip(mine, theirs)):
        return None
    return renamed


def listing(node, refs=None) -> list[str]:
    """One text per leaf path: "W_f (H, H + I)", "layers[l][d].W_xh (H, I) for l = 0, (H, D·H) for l ≥ 1"."""
    return lines_of(leaves(node, refs))


def leaves(node, refs=None) -> dict:
    """Leaf path -> [(condition, text)]."""
    by_path: dict[str, list] = {}
    for path, condition, text in flat(node, refs=refs):
        by_path.setdefault(path, []).append((condition, text))
    return by_path


def lines_of(by_path: dict) -> list[str]:
    lines = []
    for path, found in by_path.items():
        if len(found) > 1 and len({text for _, text in found}) == 1:  # the same in every run of elements
            found = [("", found[0][1])]
        if len(found) == 1 and not found[0][0]:
            text = found[0][1]
            lines.append(f"{path}: {text}" if "parameters" in text else f"{path} {text}")
        else:
            lines.append(f"{path}{':' if any('parameters' in t for _, t in found) else ''} " + ", ".join(f"{text} for {condition}" if condition else text
                                                for condition, text in found))
    return lines


def lengths(node) -> dict:
    """List path -> its length's name, for the index letters' meaning."""
    found = {}
    if isinstance(node, dict):
        for value in node.values():
            found |= lengths(value)
    elif isinstance(node, Listed):
        found[node.length] = True
        for _, element in node.groups:
            found |= lengths(element)
    return found


def changes(base: dict, other: dict, refs=None) -> list[str]:
    """What a variant changes in the parameters, inputs and outputs: "+ W_in (H, I)", "− W_h", "out (…)"."""
    found = []
    for part in ("parameters", "inputs", "outputs"):
        was, now = leaves(base[part], refs), leaves(other[part], refs)
        words = [f"− {path}" for path in was if path not in now]
        words += [("+ " if path not in was else "") + line for path, line in zip(now, lines_of(now))
                  if was.get(path) != now[path]]
        if words:
            found.append(f"{part}: " + ", ".join(words))
    return found
