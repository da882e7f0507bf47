"""The checkout's own pytest setup. nlpspec's options, fixtures and summary come from its plugin
(nlpspec/plugin.py, registered by the pytest11 entry point of `pip install -e .`); here, only a
guard that the tests run against this checkout and not some other installed nlpspec."""
import pathlib

import pytest


def pytest_configure(config):
    try:
        import nlpspec
    except ImportError:
        raise pytest.UsageError("nlpspec is not installed: run `pip install -e .` in this checkout") from None
    here = pathlib.Path(__file__).parent.resolve()
    if pathlib.Path(nlpspec.__file__).resolve().parent != here / "nlpspec":
        raise pytest.UsageError(f"this checkout's tests would run against the nlpspec installed at "
                                f"{pathlib.Path(nlpspec.__file__).parent}: run `pip install -e .` here")
