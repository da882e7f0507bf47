"""MathML of a spec entry, printed by sympy's presentation printer from the very objects the
oracle compiles.

Where the article has its own notation (the spec's symbol names in `LATEX_NAMES`, the LaTeX heads
of the spec's functions, LaTeX-named symbols of the compositions), that piece is converted from
the same LaTeX the page shows beside it (latex2mathml), so the two cannot say different things;
the structure around it (sums, products, fractions, powers) is sympy's MathML.
"""
from __future__ import annotations

from xml.dom import minidom

import latex2mathml.converter
import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from nlpspec.spec.equation import LATEX_NAMES, ArticleLatexPrinter, Composition, Equation

PLAIN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class _Placeholders:
    """Stands in for the LaTeX printer inside a spec function's `_latex`: each argument becomes a
    marker, later swapped for the argument's own MathML."""

    def __init__(self):
        self.args = []

    def _print(self, arg):
        self.args.append(arg)
        return rf"\text{{ARG{len(self.args) - 1}}}"


class ArticleMathMLPrinter(MathMLPresentationPrinter):
    """sympy's presentation MathML, in the article's notation."""

    def from_latex(self, tex: str, args=()):
        """An mrow converted from LaTeX, with markers ARGk replaced by the MathML of args[k]."""
        math = minidom.parseString(latex2mathml.converter.convert(tex)).documentElement
        row = self.dom.createElement("mrow")
        for child in list(math.childNodes):
            row.appendChild(self.dom.importNode(child, True))
        for marker in list(row.getElementsByTagName("mtext")):
            text = marker.firstChild.data if marker.firstChild else ""
            if text.startswith("ARG") and text[3:].isdigit():
                marker.parentNode.replaceChild(self._print(args[int(text[3:])]), marker)
        return row

    def _print_MatrixSymbol(self, sym):
        if sym.name in LATEX_NAMES:
            return self.from_latex(LATEX_NAMES[sym.name])
        return self.from_latex(ArticleLatexPrinter()._print(sym))

    def _print_Symbol(self, sym, style="plain"):
        if set(sym.name) <= PLAIN:
            return super()._print_Symbol(sym, style)
        return self.from_latex(sym.name)  # a composition's LaTeX-named symbol (D^{(N)}, …)

    def _print_Function(self, expr):
        name = expr.func.__name__
        if set(name) <= PLAIN:
            return super()._print_Function(expr)
        return self.from_latex(name + r"\left(" + ", ".join(rf"\text{{ARG{k}}}" for k in range(len(expr.args)))
                               + r"\right)", expr.args)

    def _print_HadamardProduct(self, expr):
        """f_t ⊙ C_{t-1}, as the article (and the LaTeX beside it) writes the elementwise product."""
        tex = r" \odot ".join(rf"\left(\text{{ARG{k}}}\right)" if a.is_MatAdd else rf"\text{{ARG{k}}}"
                               for k, a in enumerate(expr.args))
        return self.from_latex(tex, expr.args)

    def _print_Piecewise(self, expr):
        """A mask's cases, as the LaTeX beside it writes them (sympy's MathML has no Piecewise)."""
        rows, args = [], []
        for value, condition in expr.args:
            args.append(value)
            when = r"\text{otherwise}" if condition == sp.true else rf"\text{{if }} \text{{ARG{len(args)}}}"
            if condition != sp.true:
                args.append(condition)
            rows.append(rf"\text{{ARG{len(args) - 1 - (condition != sp.true)}}} & {when}")
        return self.from_latex(r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}", args)

    def _print_Relational(self, expr):
        """sympy writes text unescaped (its RawText), and a relation's `<` or `>` as is, which would
        break the page: escaped here."""
        row = super()._print_Relational(expr)
        for sign in row.getElementsByTagName("mo"):
            if sign.firstChild is not None and sign.firstChild.data in ("<", ">"):
                sign.firstChild.data = {"<": "&lt;", ">": "&gt;"}[sign.firstChild.data]
        return row

    def _print_OneMatrix(self, expr):
        return self.from_latex(r"\mathbf{1}")

    def _print_Basic(self, expr):
        """A spec function (σ, softmax, LN, the masks): its own `_latex`, the arguments as MathML."""
        if hasattr(type(expr), "_latex"):
            stand_in = _Placeholders()
            return self.from_latex(expr._latex(stand_in), stand_in.args)
        return super()._print_Basic(expr)


def mathml(entry: Equation | Composition) -> str:
    """The entry as one block <math> element."""
    if isinstance(entry, Equation):
        relations = [sp.Eq(lhs, rhs, evaluate=False) for lhs, rhs in zip(entry.targets, entry.expressions)]
    else:
        relations = list(entry.relations)
    printer = ArticleMathMLPrinter({"order": "none"})
    parts = []
    for k, relation in enumerate(relations):
        if k:
            parts.append('<mo separator="true">,</mo><mspace width="1em"/>')
        parts.append(printer._print(relation).toxml())
    return ('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow>' + "".join(parts)
            + "</mrow></math>")


def definitions(entry: Equation | Composition) -> list[str]:
    """The entry-by-entry definitions of the functions the entry applies, each a block <math>
    element (terms in sympy's order, as in their LaTeX)."""
    printer = ArticleMathMLPrinter()
    return [f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">{printer._print(eq).toxml()}</math>'
            for eq in getattr(entry, "definitions", ())]
