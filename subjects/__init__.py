"""Subjects: implementations under test, each behind a small adapter (see `subjects.base`)."""
if __name__ != "nlpspec.subjects":  # one name per module: the folder is mapped into nlpspec (pyproject.toml)
    raise ImportError(f"import nlpspec.subjects, not {__name__}: the checkout's subjects/ is the package nlpspec.subjects")
from .base import Declaration, Subject
from .registry import BUILTINS, load_subject

__all__ = ["BUILTINS", "Declaration", "Subject", "load_subject"]
