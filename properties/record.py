"""What one case found: its Record, for tables and JSON, and its failures, one per cause, each with
its message, its falsifying example and the Hypothesis choices that replay it exactly
(`--nlpspec-replay`). The runner (runner.py) makes them; the plugin, the summary and the report
read them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from .engine import failures as fail
from .engine.clock import SubjectHang
from .engine.failures import SubjectFailure
from .profiles import SHRINK_SECONDS


@dataclass
class Failure:
    """One distinct failure of a case: its message and the choices that replay its example."""

    message: str
    replay: str = ""     # a reproduce_failure blob; empty where none could be taken
    kind: str = ""       # value, precision, form, raised, in-place, nondeterministic, hang, … (properties/engine/failures.py)
    count: int = 1       # the failures Hypothesis found that share this one's cause (kind, output, E-id): reported once
    frames: list = field(default_factory=list)  # where the subject's own code raised: [{file, line, function, source}]
    eid: str = ""        # the equation the failure names ("" where it names none: a raise, a form error)


@dataclass
class Record:
    """What one case found, in a form for tables and JSON."""

    subject: str
    component: str
    check: str
    eids: list
    status: str          # pass, fail, skip, xfail (expected failure that failed), stale (one that passed)
    message: str = ""
    variant: str = ""
    options: dict = field(default_factory=dict)
    option_set: str = ""  # the name of the subject's option set, where it named one
    examples: int = 0    # cases drawn: all of them if it passed, up to the first failure if not
    failures: list = field(default_factory=list)  # [{"message", "replay", "kind", "count", "frames", "eid"}], one per cause
    observations: list = field(default_factory=list)  # what the subject did where nothing is judged
    declined: str = ""  # why the subject's declaration rules the check out ("lacks key_padding"), if it does
    declared: list = field(default_factory=list)  # what the subject's declaration leaves unchecked or sets
    returned: list = field(default_factory=list)  # the outputs the subject returned and the check compared
    unreturned: list = field(default_factory=list)  # E-ids whose output it never returned: judged through others
    version: str = ""    # the subject's version

    @property
    def id(self) -> str:
        return check_id(self.component, self.check)

    def as_dict(self) -> dict:
        return asdict(self) | {"id": self.id}


def check_id(component: str, check: str) -> str:
    """The id a subject's expected_failures names: "lstm.cell-oracle"."""
    return f"{component}-{check}"


def _cause(exc: BaseException) -> tuple:
    return exc.cause if isinstance(exc, SubjectFailure) else (type(exc).__name__, str(exc))


def by_cause(failures: list, reproduce: Callable[[str], str] | None, reported: list,
             cut_short: bool = False) -> list[Failure]:
    """One Failure per cause: Hypothesis tells failures apart by the line that raised them, so one
    wrong output reached by two calls of a check is two of its failures; they are one report here,
    the first found, with a count. `cut_short`: the shrinking stopped at its time limit."""
    groups: dict[tuple, list] = {}
    for exc in failures:
        groups.setdefault(_cause(exc), []).append(exc)
    found = []
    for same in groups.values():
        exc = same[0]
        message = _message(exc, reproduce, reported)
        if cut_short:
            message += (f"\n  (shrinking stopped after {SHRINK_SECONDS:g} s: the example is smaller than the one "
                        f"first found, not always the smallest)")
        if len(same) > 1:
            more = len(same) - 1
            message += f"\n  (and {more} more example{'s' if more > 1 else ''} like it: the same kind, output and equation)"
        found.append(Failure(message, getattr(exc, "_nlpspec_replay", ""),
                             "hang" if isinstance(exc, SubjectHang) else getattr(exc, "kind", ""), len(same),
                             list(getattr(exc, "frames", [])), getattr(exc, "eid", None) or ""))
    return found


def _message(exc: BaseException, reproduce: Callable[[str], str] | None, reported: list) -> str:
    """The failure's text, the falsifying example (Hypothesis's notes, or what a replay reported),
    compact (fail.example_lines), and its reproduce line."""
    notes = getattr(exc, "__notes__", None) or [str(line) for line in reported]
    lines = [str(exc), *fail.example_lines(notes)]
    if reproduce is not None:
        lines.append(f"  reproduce: {reproduce(getattr(exc, '_nlpspec_replay', ''))}")
    return "\n".join(lines)
