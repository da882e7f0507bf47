"""A mutant: a subject, the bug it carries, and the components the bug reaches."""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Subject
from ..reference import VERSION, builders


@dataclass(frozen=True)
class Mutant:
    subject: Subject
    bug: str
    components: tuple[str, ...]


def mutant(name: str, bug: str, components: tuple[str, ...], **pieces) -> Mutant:
    """The reference with some pieces (cells, output, stacked, seq2seq) replaced by broken ones."""
    return Mutant(Subject(name=f"zoo.{name}", version=VERSION, builders=builders(**pieces)), bug, components)
