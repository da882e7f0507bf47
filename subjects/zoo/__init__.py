"""The mutant zoo: subjects with one small, deliberate bug each, which the suite must catch.

A mutant is a subject like any other: the reference adapter's builders, with those of the
components it breaks replaced by small ones holding the bug (`pytest --pyargs nlpspec --subject
zoo.lstm_gates_swapped` shows what a user with that bug would see). `MUTANTS` lists them with the
components they break; those of `TILED` show their bug only at the scale profile's sizes, those of `COMPILED` only
in the option set "compiled" (torch.compile).
"""
from .attention import MUTANTS as ATTENTION
from .backward import MUTANTS as BACKWARD
from .compiled import MUTANTS as COMPILED
from .recurrent import MUTANTS as RECURRENT
from .tiled import MUTANTS as TILED
from .transformer import MUTANTS as TRANSFORMER

MUTANTS = {**RECURRENT, **ATTENTION, **TRANSFORMER, **BACKWARD, **TILED, **COMPILED}
