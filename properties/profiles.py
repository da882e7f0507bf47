"""Hypothesis profiles of nlpspec: dev (default), ci (default when CI is set), thorough.

Pick one with Hypothesis's own `--hypothesis-profile`; importing this module registers them. The
plugin hands each check its profile's settings explicitly (`settings_for`) and loads no profile
globally, so a project's own Hypothesis tests keep their settings.
"""
import os

from hypothesis import HealthCheck, Phase, settings

# Cases are whole models drawn in one go: large and slow by Hypothesis's measure, on purpose.
# No deadline: timing belongs to the benchmark (a hang is caught by properties/engine/clock.py). No
# "explain" phase: the message says what failed.
_common = dict(deadline=None, print_blob=False, phases=[p for p in Phase if p != Phase.explain],
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.large_base_example])
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=50, derandomize=True, database=None, **_common)
settings.register_profile("thorough", max_examples=500, **_common)


def chosen() -> str:
    """The profile when none is named: ci where the CI variable is set, else dev."""
    return "ci" if os.environ.get("CI") else "dev"


def settings_for(profile: str) -> settings:
    """A profile's settings for nlpspec's checks: its examples, randomness and database, with the
    health checks and deadline the checks need whatever profile is named."""
    return settings(settings.get_profile(profile), **_common)
