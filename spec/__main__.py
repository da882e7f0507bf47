"""Print the catalogue: E-id, statement, symbols with their shapes, LaTeX and the definitions of
the functions it applies (`python -m nlpspec.spec`)."""
from . import CATALOGUE, Equation

for entry in CATALOGUE.values():
    variant = f"  (variant of {entry.variant_of})" if getattr(entry, "variant_of", None) else ""
    print(f"{entry.eid}{variant}\n    {entry.statement}")
    if isinstance(entry, Equation):
        shapes = ", ".join(f"{name}: {rows}×{cols}" for name, (rows, cols) in entry.shapes.items())
        print(f"    symbols: {shapes}")
    print(f"    $$ {entry.latex} $$")
    for tex in getattr(entry, "definitions_latex", ()):
        print(f"    where $$ {tex} $$")
    print()
