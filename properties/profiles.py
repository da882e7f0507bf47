"""Hypothesis profiles of nlpspec: dev (default), ci (default when CI is set), thorough, and scale.

scale draws few examples at the sizes where tiled kernels break (sequence lengths up to 4096, the
tile boundaries 63, 64, 65, … drawn often; head widths up to 256; d_model up to 1024:
properties/engine/strategies.py, `at_scale`), for the oracle and gradient checks of the components
that such kernels implement (SCALE_SCOPE); the other cases are deselected.

Pick one with Hypothesis's own `--hypothesis-profile`; importing this module registers them. The
plugin hands each check its profile's settings explicitly (`settings_for`) and loads no profile
globally, so a project's own Hypothesis tests keep their settings.

The dtypes a run may take (`DTYPES`, `--dtype`) and a dtype's name in them (`dtype_name`) live here
too: the plugin reads them before torch is loaded.
"""
import os

from hypothesis import HealthCheck, Phase, settings

# Cases are whole models drawn in one go: large and slow by Hypothesis's measure, on purpose.
# No deadline: timing belongs to the benchmark (a hang is caught by properties/engine/clock.py). No
# "explain" phase: the message says what failed.
_common = dict(deadline=None, print_blob=False, phases=[p for p in Phase if p != Phase.explain],
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.large_base_example])
# Each from Hypothesis's default profile: a profile registered without a parent takes the one loaded
# now, which is Hypothesis's own derandomised "ci" where the CI variable is set (dev would not be random)
_default = settings.get_profile("default")
settings.register_profile("dev", _default, max_examples=25, **_common)
settings.register_profile("ci", _default, max_examples=50, derandomize=True, database=None, **_common)
settings.register_profile("thorough", _default, max_examples=500, **_common)
settings.register_profile("scale", _default, max_examples=5, **_common)

# what each is, for `pytest --help` and the error on an unknown name (README, "Options")
DESCRIPTIONS = {
    "dev": "25 examples a check, random (the default; the header prints the seed)",
    "ci": "50 examples, derandomised, no example database (the default where CI is set)",
    "thorough": "500 examples, random",
    "scale": "5 examples at the sizes where tiled kernels break, for the oracle and gradient checks of the "
             "attention components and encoder.layer",
}

# A failing example is shrunk for at most this long per check: each example of the suite is a whole
# model, and Hypothesis's own limit (five minutes) is a long wait for an example a little smaller
SHRINK_SECONDS = 20.0

# the dtypes a run may be in (`--dtype`), by name
DTYPES = ("float64", "float32", "bfloat16", "float16")


def dtype_name(dtype) -> str:
    """A torch dtype's name as DTYPES and the messages write it: "float32" for torch.float32."""
    return str(dtype).removeprefix("torch.")


SCALE_SCOPE = (("attention", "attention.causal", "mha", "mha.causal", "encoder.layer"), ("oracle", "gradient"))


def at_scale(profile: str) -> bool:
    return profile == "scale"


def in_scope(profile: str, component: str, check: str) -> bool:
    """Whether the profile runs this check of this component (every profile but scale runs all)."""
    if not at_scale(profile):
        return True
    components, checks = SCALE_SCOPE
    return component in components and check in checks


def chosen() -> str:
    """The profile when none is named: ci where the CI variable is set, else dev."""
    return "ci" if os.environ.get("CI") else "dev"


def settings_for(profile: str) -> settings:
    """A profile's settings for nlpspec's checks: its examples, randomness and database, with the
    health checks and deadline the checks need whatever profile is named."""
    return settings(settings.get_profile(profile), **_common)


def described() -> str:
    """The profiles in a phrase: `pytest --help` prints it."""
    return "; ".join(f"{name}: {text}" for name, text in DESCRIPTIONS.items())


def unknown(name: str) -> str | None:
    """Why `name` is no profile (a one-line usage error naming the known ones), or None if it is one
    (nlpspec's, or one a conftest registered)."""
    try:
        settings.get_profile(name)
        return None
    except Exception:  # hypothesis.errors.InvalidArgument
        others = sorted(set(getattr(settings, "_profiles", {})) - set(DESCRIPTIONS) - {"default"})
        return (f"--hypothesis-profile {name}: no such profile; nlpspec's are {', '.join(DESCRIPTIONS)}"
                + (f", and {', '.join(others)} is registered too" if len(others) == 1 else
                   f", and {', '.join(others)} are registered too" if others else ""))
