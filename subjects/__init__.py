"""Subjects: implementations under test, each behind a small adapter. What a subject is lives in
`subjects.protocol`, which the engine imports alone; the registry of built-in subjects
(`subjects.registry`: BUILTINS, load_subject) is imported on first use, with none of the adapters."""
if __name__ != "nlpspec.subjects":  # one name per module: the folder is mapped into nlpspec (pyproject.toml)
    raise ImportError(f"import nlpspec.subjects, not {__name__}: the checkout's subjects/ is the package nlpspec.subjects")
from .protocol import Declaration, Subject

__all__ = ["BUILTINS", "Declaration", "Subject", "load_subject"]


def __getattr__(name):  # PEP 562: `import nlpspec.subjects.protocol` loads no registry
    if name in ("BUILTINS", "load_subject"):
        from . import registry
        return getattr(registry, name)
    raise AttributeError(f"module 'nlpspec.subjects' has no attribute {name!r}")
