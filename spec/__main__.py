"""Print the catalogue: E-id, statement, symbols with their shapes, LaTeX and the definitions of
the functions it applies (`python -m nlpspec.spec`)."""
import sympy as sp

from . import CATALOGUE, Equation


def shape_text(shape, render=str, times=" × ", brackets=("(", ")")) -> str:
    """A symbol's shape as the article writes it, a sum in parentheses: H × (H + I). The site's
    docs/mathml.py shape_latex writes the same rule in LaTeX; with render=latex, times=r" \\times ",
    brackets=(r"\\left(", r"\\right)") this gives its text."""
    return times.join(f"{brackets[0]}{render(d)}{brackets[1]}" if sp.sympify(d).is_Add else render(d) for d in shape)


def main():
    for entry in CATALOGUE.values():
        variant = f"  (variant of {entry.variant_of})" if getattr(entry, "variant_of", None) else ""
        print(f"{entry.eid}{variant}\n    {entry.statement}")
        if isinstance(entry, Equation):
            print(f"    symbols: {', '.join(f'{name}: {shape_text(shape)}' for name, shape in entry.shapes.items())}")
        print(f"    $$ {entry.latex} $$")
        for tex in getattr(entry, "definitions_latex", ()):
            print(f"    where $$ {tex} $$")
        print()


if __name__ == "__main__":
    main()
