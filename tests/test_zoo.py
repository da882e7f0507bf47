"""Bug-finding power: every mutant of the zoo is caught by the ci profile (the default in CI)."""
import pytest
from hypothesis import settings

from properties.runner import first_failure
from subjects.zoo import MUTANTS

pytestmark = pytest.mark.selftest


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught(name):
    mutant = MUTANTS[name]
    record = first_failure(mutant.subject, mutant.components, settings.get_profile("ci"))
    assert record is not None, f"mutant {name} ({mutant.bug}) passed every check of {mutant.components}"
