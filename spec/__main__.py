"""Print the catalogue: E-id, statement, LaTeX (`python -m spec`)."""
from . import CATALOGUE

for entry in CATALOGUE.values():
    variant = f"  (variant of {entry.variant_of})" if getattr(entry, "variant_of", None) else ""
    print(f"{entry.eid}{variant}\n    {entry.statement}\n    $$ {entry.latex} $$\n")
