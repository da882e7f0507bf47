"""A time limit on each call into a subject: one that hangs is reported as hanging, and the run
goes on (`--nlpspec-timeout`, default 60 s).

SIGALRM interrupts Python code (a loop, a sleep, a lock's wait) in the main thread; a hang inside
one C call is interrupted when that call returns. Where there is no SIGALRM (Windows) or the
check runs outside the main thread, calls run without a limit.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

class SubjectHang(BaseException):
    """The subject did not return within the time limit. A BaseException, so that Hypothesis stops
    at once instead of shrinking (every smaller example would wait out the limit again)."""


DEFAULT_SECONDS = 60.0  # a call of the suite's drawn sizes takes milliseconds; a first CUDA call, seconds


@contextmanager
def time_limit(seconds: float, what: str):
    """Within it, `what` must finish in `seconds`, else SubjectHang (from .harness) is raised."""
    usable = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expired(signum, frame):
        raise SubjectHang(f"{what} did not return within {seconds:g} s (--nlpspec-timeout): it hangs, or is "
                          f"far slower than this size needs; the check stopped here")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
