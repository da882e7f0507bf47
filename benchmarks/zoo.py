"""Which check catches each mutant, and after how many examples (ci profile, shrinking off).

    python benchmarks/zoo.py
"""
from hypothesis import settings

import nlpspec.properties.profiles  # noqa: F401  (registers the Hypothesis profiles)

from nlpspec.properties.runner import first_failure
from nlpspec.subjects.zoo import MUTANTS

print(f"{'mutant':<34} {'caught by':<40} examples  bug")
for name, mutant in sorted(MUTANTS.items()):
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"),
                           dtype=mutant.dtype)
    caught = f"{record.id}" + "".join(f" {k}={v}" for k, v in record.options.items()) if record else "NOT CAUGHT"
    print(f"{name:<34} {caught:<40} {record.examples if record else '-':>8}  {mutant.bug}")
