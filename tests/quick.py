"""The Hypothesis settings of the suite's own tests that run a subject's checks: few examples, the
same ones every run (derandomized, no database), no shrinking, no deadline (a subject's first call
may compile or export)."""
from hypothesis import Phase, settings

QUICK = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                 phases=(Phase.explicit, Phase.generate))


def quick(examples: int) -> settings:
    """QUICK with this many examples a check."""
    return settings(QUICK, max_examples=examples)
