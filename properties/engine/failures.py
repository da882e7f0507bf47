"""What a subject can get wrong, as objects: one builder per kind of failure, one message format
(array-api-tests' pytest_helpers style):

    [E-id] subject 'S', component C: what was found, and what it should have been

A `SubjectFailure` carries its kind (for records and tests), the E-id it points at, the output it
is about and where it happened; its text is the message a user reads. A failure raised by the
subject's own code carries that code's frames (file, line, function, source line), outside the suite.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import traceback
from functools import lru_cache

from ..profiles import dtype_name


class SubjectFailure(AssertionError):
    """The subject did something wrong; the message says what, naming subject and component."""

    def __init__(self, text: str, kind: str = "", where: str = "", eid: str | None = None,
                 output: str | None = None, frames: list | None = None):
        head = f"[{eid}] " if eid else ""
        super().__init__(f"{head}{where}: {text}" if where else f"{head}{text}")
        self.kind, self.where, self.eid, self.text = kind, where, eid, text
        self.output = output          # the output (or gradient) it is about, where it is about one
        self.frames = frames or []    # the subject's own frames, innermost last, where its code raised
        self.values: dict = {}        # a non-finite output as returned, by name (read by diagnosis.py)

    @property
    def cause(self) -> tuple:
        """What makes two failures of one check the same cause, reported once: the kind, the output,
        the E-id, and for a raise the exception and the subject's line that raised it."""
        where = (self.frames[-1]["file"], self.frames[-1]["line"]) if self.frames else ()
        return (self.kind, self.output, self.eid, self.text.split("\n")[0] if self.kind == "raised" else "", where)


@lru_cache(maxsize=1)
def _suite_folders() -> tuple[str, ...]:
    """The folders of the suite's own code (the plugin, the checks, the spec's oracle): frames there
    are nlpspec's, not the subject's; the adapters and the reference are the subject's code."""
    folders = []
    for name in ("nlpspec", "nlpspec.properties", "nlpspec.spec"):
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            folders.append(os.path.realpath(folder))
    return tuple(folders)


def _shown(path: str) -> str:
    """A file as a person finds it: relative to the working directory where it is under it."""
    real = os.path.realpath(path)
    try:
        relative = os.path.relpath(real)
    except ValueError:  # another drive
        return real
    return real if relative.startswith("..") else relative


def own_frames(exc: BaseException, limit: int = 8) -> list[dict]:
    """The frames of exc's traceback that are not the suite's (the subject's builder, its callable,
    the libraries they call), innermost last: file, line, function, source line. At most `limit`,
    the innermost kept."""
    suite = _suite_folders()
    frames = [{"file": _shown(f.filename), "line": f.lineno, "function": f.name, "source": (f.line or "").strip()}
              for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.realpath(f.filename).startswith(tuple(folder + os.sep for folder in suite))]
    return frames[-limit:]


def frame_lines(frames: list[dict]) -> list[str]:
    """The subject's frames, innermost first, one line each: 'file:line in function: source'."""
    lines = []
    for k, frame in enumerate(reversed(frames)):
        source = f": {frame['source']}" if frame["source"] else ""
        lines.append(f"  {'raised at' if k == 0 else 'called from'} {frame['file']}:{frame['line']} in "
                     f"{frame['function']}{source}")
    return lines


def said(exc: BaseException) -> str:
    """str(exc), or what it is where its __str__ raises."""
    try:
        return str(exc)
    except Exception as broken:
        return f"<its message could not be read: {type(broken).__name__} in __str__>"


def raised(where: str, who: str, exc: BaseException) -> SubjectFailure:
    """The adapter's builder, or the subject's call, raised: what it raised (anything: SystemExit,
    pytest's skip, Hypothesis's control exceptions), and where in its own code."""
    frames = own_frames(exc)
    text = "\n".join([f"{who} raised {type(exc).__name__}: {said(exc)}", *frame_lines(frames)])
    return SubjectFailure(text, "raised", where, frames=frames)


def changed_state(where: str, who: str, changes: list[str]) -> SubjectFailure:
    """The subject's code changed the process's global state and left it so (restored by the suite)."""
    return SubjectFailure(f"{who} changed the process's global state and left it changed: {'; '.join(changes)} "
                          f"(restored; a subject leaves it as it found it)", "global state", where)


def not_callable(where: str, found) -> SubjectFailure:
    return SubjectFailure(f"the adapter's builder returned {type(found).__name__}, not a callable (a builder "
                          f"returns the function that computes the component)", "builder", where)


def modified(where: str, what: str, name: str) -> SubjectFailure:
    """An input or parameter written in place."""
    return SubjectFailure(f"the subject modified its {what} {name!r} in place", "in-place", where)


def form(where: str, text: str) -> SubjectFailure:
    """What came back is not what the component returns: a type, a missing or unknown output, a
    shape, a dtype, a device."""
    return SubjectFailure(text, "form", where)


def not_finite(where: str, eid: str, name: str, value: float, index: tuple, expected: float,
               diagnosis: str = "") -> SubjectFailure:
    """NaN or Inf where the oracle is finite; with what it matches there and on fresh cases, if anything."""
    return SubjectFailure(f"output {name!r} is {value} at index {index}, where the oracle gives {expected:.6g}"
                          + (f"\n  {diagnosis}" if diagnosis else ""), "not finite", where, eid, name)


def nondeterministic(where: str, name: str, difference: float) -> SubjectFailure:
    return SubjectFailure(f"two calls on the same inputs give different {name!r} (max difference {difference:.3g}): "
                          f"the subject is not deterministic (dropout left on? state kept between calls?); the spec "
                          f"is eval mode, no dropout", "nondeterministic", where, output=name)


def mismatch(where: str, eid: str, name: str, against: str, diagnosis: str, details: list[str]) -> SubjectFailure:
    """An output off by more than the tolerance rule allows."""
    kind = "precision" if diagnosis.startswith("precision") else "value"
    return SubjectFailure("\n".join([f"output {name!r} disagrees with {against}", f"  {diagnosis}"]
                                    + [f"  {line}" for line in stated_once(details)]), kind, where, eid, name)


# torch.testing.assert_close's own block says again what the suite's lines say (the worst element,
# by how much, the bound); of it, the count of elements off is kept
_REPEATED = ("Tensor-likes are not close", "Scalars are not close", "Greatest absolute difference",
             "Greatest relative difference")


def stated_once(details: list[str]) -> list[str]:
    """The comparison's lines with what torch.testing's message repeats left out."""
    return [line for line in details if line.strip() and not line.strip().startswith(_REPEATED)]


def outside(where: str, eid: str, name: str, value: float, index: list, low: float, high: float,
            slack: float) -> SubjectFailure:
    """An output outside the range its equation confines it to."""
    return SubjectFailure(f"output {name!r} is {value:.17g} at {index}, outside [{low}, {high}] beyond rounding "
                          f"({slack:.3g})", "bounds", where, eid, name)


def masked_weight(where: str, eid: str, name: str, value: float, index: list) -> SubjectFailure:
    """A softmax weight where the key is hidden: it must be exactly 0."""
    return SubjectFailure(f"output {name!r} is {value:.6g} at {index}, where the key is hidden: a masked weight must "
                          f"be exactly 0", "bounds", where, eid, name)


def not_a_distribution(where: str, eid: str, name: str, total: float, index: list, floor: float) -> SubjectFailure:
    """A softmax row that does not sum to 1."""
    return SubjectFailure(f"output {name!r} has a row summing to {total:.17g} at {index}, not 1 (within {floor:.3g}); "
                          f"a softmax row is a probability vector", "bounds", where, eid, name)


def unstable_verdict(where: str, first: BaseException) -> SubjectFailure:
    """An example that failed once and passed when run again."""
    return SubjectFailure(f"this check failed on an example and passed when the same example ran again: the subject "
                          f"is not deterministic (dropout left on? state kept between calls?); the spec is eval mode, "
                          f"no dropout. The first run said:\n{first}", "nondeterministic", where)


def did_not_reproduce(where: str, exc: BaseException) -> SubjectFailure:
    """A replayed example (--nlpspec-replay) that passed."""
    return SubjectFailure(f"the replayed example passed ({exc})", "did not reproduce", where)


def gradient_leak(where: str, eid: str, text: str) -> SubjectFailure:
    """A gradient that must be exactly 0 is not (a random cotangent, autograd)."""
    return SubjectFailure(f"{text}, not exactly 0 (a random cotangent, autograd)", "gradient", where, eid)


def gradient_mismatch(where: str, eid: str, what: str, diagnosis: str, details: list[str]) -> SubjectFailure:
    """A gradient (the subject's autograd, a drawn cotangent) off the spec's by more than the rule allows."""
    kind = "precision" if diagnosis.startswith("precision") else "gradient"
    return SubjectFailure("\n".join([f"the gradient with respect to {what} disagrees with the spec's (the vector-"
                                      f"Jacobian product under a drawn cotangent)", f"  {diagnosis}"]
                                     + [f"  {line}" for line in stated_once(details)]), kind, where, eid, what)


def not_read(where: str, eid: str, path: str, name: str, moved: float, bound: float) -> SubjectFailure:
    """A parameter whose change moves the spec's output and leaves the subject's bit for bit the same."""
    return SubjectFailure(f"parameter {path!r} is not read: changing it moves the spec's {name!r} by {moved:.3g} "
                          f"(beyond twice its tolerance, {bound:.3g}), and the subject's {name!r} not at all",
                          "not read", where, eid, path)


def lower_precision(failure: SubjectFailure, lower, dtype) -> SubjectFailure:
    """A failure of a bounds or parameters_read check that the subject's lower precision explains
    (its numbers, or its calls against the oracle, are `lower`'s), within what rounding in `lower` allows."""
    short, run = dtype_name(lower), dtype_name(dtype)
    found = SubjectFailure(f"{failure.text}\n  precision: the subject computes in {short} in a "
                           f"{run} run, and the value is within {short}'s rounding (the subject computes in a lower "
                           f"precision)", "precision", failure.where, failure.eid, failure.output)
    return found


# --- the falsifying example, as a person reads it -----------------------------------------------
_DRAW = re.compile(r"^Draw \d+(?: \((?P<label>.*?)\))?: (?P<value>.*)$", re.S)
_ARRAY = re.compile(r"^(?P<path>[\w.\[\]]+(?: \([^)=\n]*\))?) = (?P<value>\[.*\])$", re.S)
_ANY = "  # or any other generated value"
WIDTH = 110  # the example's lines are wrapped at about this width


def example_lines(notes: list[str]) -> list[str]:
    """Hypothesis's notes on a failing example (its call, each draw, the arrays the strategies
    print), in a few lines: the drawn sizes and choices on one, the arrays after it, each summed up
    (small ones in full; a shrunk one as its shape and its few non-zero entries). Other notes are
    kept as they are; the line on how to reproduce it with Hypothesis is left out (the reproduce
    line says how)."""
    drawn, arrays, other = [], [], []
    for note in notes:
        note = str(note).strip()
        if note.startswith(("Failing test case:", "Falsifying example:", "You can reproduce this example")):
            continue
        draw, array = _DRAW.match(note), _ARRAY.match(note)
        if draw:
            value = draw["value"]
            if value.startswith("<") and "printed below" in value:
                continue  # the bytes of the arrays, summed up below
            label = draw["label"] or "draw"
            drawn.append(f"{label}={value.removesuffix(_ANY).strip()}" + (" (any)" if value.endswith(_ANY) else ""))
        elif array:
            arrays.append(f"{array['path']} {summed_up(array['value'])}")
        else:
            other.append(" ".join(note.split()))
    lines = [f"  example: {', '.join(drawn)}"] if drawn else []
    row = ""
    for part in arrays:
        if row and len(row) + len(part) + 2 > WIDTH:
            lines.append(row)
            row = ""
        row = f"{row}; {part}" if row else f"    {part}"
    if row:
        lines.append(row)
    return lines + [f"    {line}" for line in other]


def summed_up(text: str) -> str:
    """An array as numpy printed it, in one short phrase: in full where it has at most 6 entries,
    else its shape and its non-zero entries (a shrunk example's are few) or the range of its entries
    (the reproduce line replays the example exactly)."""
    import numpy as np
    flat = " ".join(text.split())
    try:
        quoted = re.sub(r"-?\b(?:nan|inf)\b", lambda m: f"'{m.group()}'", flat)
        array = np.array(ast.literal_eval(quoted), dtype=object)
        array = array.astype(bool if array.dtype == object and all(isinstance(v, bool) for v in array.flat)
                             else float)
    except (ValueError, SyntaxError, TypeError):  # numpy summarised it ("...") or it is not a plain array
        return f"= {flat[:WIDTH // 2]}{' …' if len(flat) > WIDTH // 2 else ''}"
    shape = tuple(array.shape)
    if array.size > 1 and not array.any():
        return f"{shape}: all {'False' if array.dtype == bool else '0'}"
    if array.size <= 6:
        return f"= {flat}"
    if array.dtype == bool:
        hidden = int(array.sum())
        return f"{shape}: {hidden} True" if hidden else f"{shape}: all False"
    nonzero = np.argwhere(array != 0)
    if len(nonzero) == 0:
        return f"{shape}: all 0"
    if len(nonzero) <= 3:
        return f"{shape}: 0 except " + ", ".join(f"{list(int(i) for i in at)} = {array[tuple(at)]:.6g}"
                                                  for at in nonzero)
    finite = array[np.isfinite(array)]
    return f"{shape} in [{finite.min():.2g}, {finite.max():.2g}]" if finite.size else f"{shape}: not finite"
