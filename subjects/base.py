"""The old home of `Subject` and `Declaration`, which live in `subjects.protocol`: kept only while
nlpspec/__init__.py still names this module for them (`nlpspec.Subject`)."""
from .protocol import Declaration, Subject

__all__ = ["Declaration", "Subject"]
