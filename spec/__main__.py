"""Print the catalogue: E-id, statement, symbols with their shapes, LaTeX and the definitions of
the functions it applies (`python -m nlpspec.spec`)."""
import sympy as sp

from . import CATALOGUE, Equation


def shape_text(shape) -> str:
    """A symbol's shape as the article writes it, a sum in parentheses: H × (H + I) (the site's
    docs/mathml.py shape_latex writes the same in LaTeX)."""
    return " × ".join(f"({d})" if sp.sympify(d).is_Add else str(d) for d in shape)


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
