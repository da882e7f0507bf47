"""A subject's code, contained: whatever it raises (SystemExit, pytest's skip, fail and exit,
Hypothesis's control exceptions: any BaseException but the user's Ctrl-C) is that subject's failure;
so is a change it leaves in the process's global state (grad mode, default dtype, NumPy's error
state, the suite's timer signal), the state restored. Each piece runs under the time limit (clock.py).
`os._exit` called by the subject (pytest would exit 0 after one line, with no report) raises
ProcessExit instead; in a process the subject forked it exits as asked. A segfault is not contained:
the report names the case that was running (nlpspec/run_state.py).

The suite's own arithmetic runs in a state of its own (`suite_state`), whatever a subject set at import.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np
import torch

from . import failures as fail
from .clock import SubjectHang, time_limit

class ProcessExit(BaseException):
    """The subject called os._exit."""


_os_exit = os._exit


def _refused_exit(status, parent=os.getpid()):
    if os.getpid() != parent:  # a child the subject forked (multiprocessing, a DataLoader's workers)
        _os_exit(status)
    raise ProcessExit(f"os._exit({status}) called: it ends the process at once (exit status {status}, no report); "
                      f"the suite stopped it")


NUMPY_DEFAULTS = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


@contextmanager
def suite_state():
    """Grad on (the spec's VJP differentiates; a subject's graph is built) and NumPy's default error
    state (the oracle's NaN and inf are values, not errors)."""
    with torch.enable_grad(), np.errstate(**NUMPY_DEFAULTS):
        yield


def global_state() -> dict:
    return {"grad mode (torch.set_grad_enabled)": torch.is_grad_enabled(),
            "default dtype (torch.set_default_dtype)": torch.get_default_dtype(),
            "NumPy's error state (np.seterr)": np.geterr()}


def restore(state: dict):
    torch.set_grad_enabled(state["grad mode (torch.set_grad_enabled)"])
    torch.set_default_dtype(state["default dtype (torch.set_default_dtype)"])
    np.seterr(**state["NumPy's error state (np.seterr)"])


def changes(before: dict, after: dict) -> list[str]:
    """What differs, in words: 'grad mode (…) True -> False'."""
    found = []
    for name, was in before.items():
        now = after[name]
        if isinstance(was, dict):
            now, was = ({k: v[k] for k in was if was[k] != now[k]} for v in (now, was))
        if was != now:
            found.append(f"{name} {was} -> {now}")
    return found


@contextmanager
def contained(where: str, who: str, seconds: float):
    """Run `who`'s code (the adapter's builder, the subject, its backward pass) under the time limit:
    what it raises becomes fail.raised, a hang SubjectHang, a change of global state fail.changed_state."""
    __tracebackhide__ = True
    before, limit = global_state(), None
    os._exit = _refused_exit
    try:
        with time_limit(seconds, f"{where}: {who}") as limit:
            yield
    except KeyboardInterrupt:
        restore(before)
        raise
    except BaseException as exc:
        restore(before)
        if isinstance(exc, SubjectHang) or (limit is not None and limit.fired):
            raise limit.hang() if limit is not None else exc from None
        raise fail.raised(where, who, exc) from exc
    finally:
        os._exit = _os_exit
    after = global_state()
    if after == before and not limit.handler_replaced:
        return
    changed = changes(before, after) + (["the handler of the suite's timer signal (SIGVTALRM)"]
                                        if limit.handler_replaced else [])
    if changed:
        restore(before)
        raise fail.changed_state(where, who, changed)
