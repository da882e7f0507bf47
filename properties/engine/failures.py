"""What a subject can get wrong, as objects: one builder per kind of failure, one message format
(array-api-tests' pytest_helpers style):

    [E-id] subject 'S', component C: what was found, and what it should have been

A `SubjectFailure` carries its kind (for records and tests), the E-id it points at and where it
happened; its text is the message a user reads.
"""
from __future__ import annotations


class SubjectFailure(AssertionError):
    """The subject did something wrong; the message says what, naming subject and component."""

    def __init__(self, text: str, kind: str = "", where: str = "", eid: str | None = None):
        head = f"[{eid}] " if eid else ""
        super().__init__(f"{head}{where}: {text}" if where else f"{head}{text}")
        self.kind, self.where, self.eid, self.text = kind, where, eid, text


def raised(where: str, who: str, exc: BaseException) -> SubjectFailure:
    """The adapter's builder, or the subject's call, raised."""
    return SubjectFailure(f"{who} raised {type(exc).__name__}: {exc}", "raised", where)


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


def not_finite(where: str, eid: str, name: str, value: float, index: tuple, expected: float) -> SubjectFailure:
    return SubjectFailure(f"output {name!r} is {value} at index {index}, where the oracle gives {expected:.6g}",
                          "not finite", where, eid)


def nondeterministic(where: str, name: str, difference: float) -> SubjectFailure:
    return SubjectFailure(f"two calls on the same inputs give different {name!r} (max difference {difference:.3g}): "
                          f"the subject is not deterministic (dropout left on? state kept between calls?); the spec "
                          f"is eval mode, no dropout", "nondeterministic", where)


def mismatch(where: str, eid: str, name: str, against: str, diagnosis: str, details: list[str]) -> SubjectFailure:
    """An output off by more than the tolerance rule allows."""
    kind = "precision" if diagnosis.startswith("precision") else "value"
    return SubjectFailure("\n".join([f"output {name!r} disagrees with {against}", f"  {diagnosis}"]
                                    + [f"  {line}" for line in details]), kind, where, eid)


def outside(where: str, eid: str, name: str, value: float, index: list, low: float, high: float,
            slack: float) -> SubjectFailure:
    """An output outside the range its equation confines it to."""
    return SubjectFailure(f"output {name!r} is {value:.17g} at {index}, outside [{low}, {high}] beyond rounding "
                          f"({slack:.3g})", "bounds", where, eid)


def masked_weight(where: str, eid: str, name: str, value: float, index: list) -> SubjectFailure:
    """A softmax weight where the key is hidden: it must be exactly 0."""
    return SubjectFailure(f"output {name!r} is {value:.6g} at {index}, where the key is hidden: a masked weight must "
                          f"be exactly 0", "bounds", where, eid)


def not_a_distribution(where: str, eid: str, name: str, total: float, index: list, floor: float) -> SubjectFailure:
    """A softmax row that does not sum to 1."""
    return SubjectFailure(f"output {name!r} has a row summing to {total:.17g} at {index}, not 1 (within {floor:.3g}); "
                          f"a softmax row is a probability vector", "bounds", where, eid)


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
                                     + [f"  {line}" for line in details]), kind, where, eid)


def not_read(where: str, eid: str, path: str, name: str, moved: float, bound: float) -> SubjectFailure:
    """A parameter whose change moves the spec's output and leaves the subject's bit for bit the same."""
    return SubjectFailure(f"parameter {path!r} is not read: changing it moves the spec's {name!r} by {moved:.3g} "
                          f"(beyond twice its tolerance, {bound:.3g}), and the subject's {name!r} not at all",
                          "not read", where, eid)


def lower_precision(failure: SubjectFailure, lower, dtype) -> SubjectFailure:
    """A failure of a bounds or parameters_read check that the subject's lower precision explains
    (its numbers, or its calls against the oracle, are `lower`'s), within what rounding in `lower` allows."""
    short, run = (str(d).removeprefix("torch.") for d in (lower, dtype))
    found = SubjectFailure(f"{failure.text}\n  precision: the subject computes in {short} in a "
                           f"{run} run, and the value is within {short}'s rounding (the subject computes in a lower "
                           f"precision)", "precision", failure.where, failure.eid)
    return found
