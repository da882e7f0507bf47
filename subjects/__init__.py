"""Subjects: implementations under test, each behind a small adapter (see `subjects.base`)."""
from .base import Subject
from .registry import BUILTINS, load_subject

__all__ = ["BUILTINS", "Subject", "load_subject"]
