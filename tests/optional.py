"""What a test needs beyond the test extra: a Debian tool (graphviz's dot, Chromium) or a subject's
extra (hf, keras, onnx). On a newcomer's machine a test whose need is missing is skipped, its reason saying
what to install; where NLPSPEC_REQUIRE_ALL=1 (.ci/run) the same test fails instead, so that CI never
passes by skipping."""
import importlib.util
import os
import shutil

import pytest

TOOLS = {  # what a test may need -> how to install it
    "g++": "apt-get install g++",
    "dot": "apt-get install graphviz",
    "chromium": "apt-get install chromium chromium-driver",
    "chromedriver": "apt-get install chromium chromium-driver",
    "selenium": "pip install -c constraints.txt -e '.[test]'",
    "transformers": "pip install -c constraints.txt -e '.[hf]'",
    "keras": "pip install -c constraints.txt -e '.[keras]'",
    "onnxruntime": "pip install -c constraints.txt -e '.[onnx]'",
    "jax": "pip install -c constraints.txt -e '.[jax]'",
    "flax": "pip install -c constraints.txt -e '.[jax]'",
}


def missing(*needs: str) -> list[str]:
    """Those of `needs` (commands or importable modules, keys of TOOLS) this machine lacks."""
    return [name for name in needs
            if shutil.which(name) is None and importlib.util.find_spec(name) is None]


def require(*needs: str):
    """Skip the calling test (or fixture) with what to install, or fail under NLPSPEC_REQUIRE_ALL=1."""
    lacking = missing(*needs)
    if not lacking:
        return
    commands = {TOOLS[name]: [other for other in lacking if TOOLS[other] == TOOLS[name]] for name in lacking}
    how = "; ".join(f"{command} (for {', '.join(names)})" for command, names in commands.items())
    if os.environ.get("NLPSPEC_REQUIRE_ALL") == "1":
        pytest.fail(f"NLPSPEC_REQUIRE_ALL=1 and this test needs what is not installed: {how}", pytrace=False)
    pytest.skip(f"not installed: {how}", allow_module_level=True)
