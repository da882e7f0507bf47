"""Dataflow diagrams drawn from the SymPy expression itself, so the diagram is the equation: the
leaves are the equation's inputs, each inner node one operation of the right-hand side, the top
node the symbol it defines. Written as SVG with matplotlib."""
from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import sympy as sp  # noqa: E402
from matplotlib import mathtext  # noqa: E402

from nlpspec.spec.equation import ArticleLatexPrinter, Equation  # noqa: E402

OPERATIONS = {"MatAdd": "+", "Add": "+", "MatMul": r"\times", "Mul": r"\times", "HadamardProduct": r"\odot",
              "Transpose": r"(\cdot)^\top", "Pow": r"(\cdot)^{(\cdot)}", "MatPow": r"(\cdot)^{(\cdot)}",
              "BlockMatrix": r"[\cdot\,;\,\cdot]", "Inverse": r"(\cdot)^{-1}"}


class _Marker:
    """Prints a spec function's head: a symbol among its arguments (LN's γ_1, β_1) by its name, the
    operand it is applied to as ARG."""

    def __init__(self):
        self.named = []

    def _print(self, arg):
        if isinstance(arg, sp.MatrixSymbol) and arg.shape[0] == 1:  # a parameter row: γ, β
            self.named.append(arg)
            return ArticleLatexPrinter()._print(arg)
        return "ARG"


def _head(expr) -> tuple[str, list]:
    """(the LaTeX head of a spec function, the arguments it names in it)."""
    marker = _Marker()
    return expr._latex(marker).split(r"\left(")[0].replace("ARG", r"\cdot"), marker.named


def label(expr) -> str:
    """The node's text: an input's name as the article writes it, or the operation."""
    if expr.is_Atom or isinstance(expr, sp.MatrixSymbol):
        return ArticleLatexPrinter()._print(expr)
    name = type(expr).__name__
    if name in OPERATIONS:
        return OPERATIONS[name]
    if hasattr(type(expr), "_latex"):  # a spec function: its LaTeX head (σ, tanh, softmax, LN, M_causal)
        return _head(expr)[0]
    return name


def children(expr) -> list:
    if expr.is_Atom or isinstance(expr, sp.MatrixSymbol):
        return []
    if type(expr).__name__ == "BlockMatrix":
        return list(expr.blocks)
    named = _head(expr)[1] if hasattr(type(expr), "_latex") else []
    return [a for a in expr.args if isinstance(a, sp.Basic) and not isinstance(a, (sp.Tuple, sp.logic.boolalg.BooleanAtom))
            and a not in named]


def layout(expr, depth: int, leaves: list, nodes: list) -> float:
    """Place expr's subtree; return its x. Leaves take the next free x, a parent sits over its children."""
    xs = [layout(child, depth + 1, leaves, nodes) for child in children(expr)]
    x = sum(xs) / len(xs) if xs else float(len(leaves))
    if not xs:
        leaves.append(x)
    nodes.append((x, depth, label(expr), xs))
    return x


def safe(tex: str) -> str:
    """Math text matplotlib can typeset, else the plain string."""
    try:
        mathtext.MathTextParser("path").parse(f"${tex}$")
        return f"${tex}$"
    except ValueError:
        return tex


def draw(eq: Equation, out: pathlib.Path) -> str:
    """The diagram of one equation: one tree per symbol it defines (self.qkv defines three)."""
    leaves, nodes = [], []
    for target, rhs in zip(eq.targets, eq.expressions):
        root = [(0.0, 0, "", [])]
        x = layout(rhs, 1, leaves, root)
        nodes += root[1:] + [(x, 0, label(target) + " =", [x])]
        leaves.append(len(leaves))  # a gap between trees
    depth = max(d for _, d, _, _ in nodes)
    fig, ax = plt.subplots(figsize=(max(3.0, 1.1 * len(leaves)), 1.0 + 0.9 * depth))
    for x, d, text, child_xs in nodes:
        for cx in child_xs:
            if d == 0 and text.endswith(" ="):
                continue
            child_depth = d + 1
            ax.annotate("", xy=(x, -d), xytext=(cx, -child_depth),
                        arrowprops=dict(arrowstyle="->", color="#777", shrinkA=11, shrinkB=11))
        if d == 0 and text.endswith(" ="):
            ax.annotate("", xy=(x, 0), xytext=(x, -1), arrowprops=dict(arrowstyle="->", color="#333", shrinkA=11,
                                                                        shrinkB=11))
            text = text.removesuffix(" =")
        leaf = not child_xs
        ax.text(x, -d, safe(text), ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.3", fc="#eef4fb" if leaf else ("#fff3b0" if d == 0 else "white"),
                          ec="#555"))
    ax.set(xlim=(-0.7, max(leaves) + 0.2), ylim=(-depth - 0.6, 0.6))
    ax.axis("off")
    name = f"dataflow_{eq.eid}.svg"
    fig.savefig(out / name, bbox_inches="tight")
    plt.close(fig)
    return name
