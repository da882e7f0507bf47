"""A time limit on each call into a subject: one that hangs is reported as hanging, and the run
goes on (`--nlpspec-timeout`, default 60 s).

A watchdog thread (one, started on first use) sends the main thread SIGVTALRM once the limit has
passed, and again every POLL seconds until the call returns; the handler raises SubjectHang. The
signal interrupts Python code (a loop, a sleep, a lock's wait); a hang inside one C call is
interrupted when that call returns. It is not a kernel timer and not SIGALRM: a subject's own
`signal.alarm` or `setitimer` (and pytest-timeout's) can neither cancel nor receive it. A subject
that swallows SubjectHang (a bare `except:` around a retry) is still judged hanging when it returns
(Limit.fired); one that replaces the handler is told by Limit.handler_replaced. Where there is no
such signal (Windows) or the check runs outside the main thread, calls run without a limit.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

SIGNAL = getattr(signal, "SIGVTALRM", None)
POLL = 0.05  # seconds between the watchdog's looks at the clock (and between its signals once expired)
DEFAULT_SECONDS = 60.0  # a call of the suite's drawn sizes takes milliseconds; a first CUDA call, seconds


class SubjectHang(BaseException):
    """The subject did not return within the time limit. A BaseException, so that Hypothesis stops
    at once instead of shrinking (every smaller example would wait out the limit again)."""


@dataclass
class Limit:
    """One limit as it runs: what it is on, and what happened."""

    what: str
    seconds: float
    deadline: float = float("inf")
    fired: bool = False              # the limit passed while it ran (swallowed or not)
    handler_replaced: bool = False   # the code replaced the suite's handler of SIGNAL

    def hang(self) -> SubjectHang:
        return SubjectHang(f"{self.what} did not return within {self.seconds:g} s (--nlpspec-timeout): it hangs, or "
                           f"is far slower than this size needs; the check stopped here")


_running: Limit | None = None  # the limit the watchdog watches
_lock = threading.Lock()
_watchdog: threading.Thread | None = None


def _watch(main: int):
    while True:
        time.sleep(POLL)
        with _lock:  # never a signal after the limit is over
            if _running is not None and time.monotonic() >= _running.deadline:
                _running.fired = True
                signal.pthread_kill(main, SIGNAL)


def _expired(signum, frame):
    limit = _running
    if limit is not None and limit.fired:  # else a late signal of a limit already over: ignored
        raise limit.hang()


def _start():
    """The watchdog and the handler, once per process (the handler stays: the signal is the suite's)."""
    global _watchdog
    if _watchdog is None:
        signal.signal(SIGNAL, _expired)
        _watchdog = threading.Thread(target=_watch, args=(threading.main_thread().ident,), daemon=True,
                                     name="nlpspec-clock")
        _watchdog.start()


@contextmanager
def time_limit(seconds: float, what: str):
    """Within it, `what` must finish in `seconds`, else SubjectHang is raised, at the latest when it
    returns. Yields the Limit. Nested in another, it leaves the outer one in charge."""
    global _running
    limit = Limit(what, seconds)
    usable = (seconds > 0 and SIGNAL is not None and hasattr(signal, "pthread_kill") and _running is None
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield limit
        return
    _start()
    if signal.getsignal(SIGNAL) is not _expired:
        signal.signal(SIGNAL, _expired)
    limit.deadline = time.monotonic() + seconds
    with _lock:
        _running = limit
    try:
        yield limit
    finally:
        with _lock:
            _running = None
        if signal.getsignal(SIGNAL) is not _expired:
            limit.handler_replaced = True
            signal.signal(SIGNAL, _expired)
    if limit.fired:
        raise limit.hang()
