"""A process-wide request to stop (SIGTERM). Once it is made, a run that ends with any error
was cancelled: interrupting a Spark call can surface as another error (py4j's "Answer from
Java side is empty") instead of the interruption itself.

Writing a run's final record is shielded: a signal that arrives meanwhile only requests the
stop, so the record is never left half-written (a `running` row of a finished run)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()
_shields = 0


def request_stop() -> None:
    _requested.set()


def stop_requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    """Forget a stop request (a long-lived process that goes on, tests)."""
    _requested.clear()


@contextmanager
def shielded() -> Iterator[None]:
    """A block of the main thread that a stop signal must not cut short (see `interrupts`);
    other threads are never interrupted by signals, so there it changes nothing."""
    global _shields
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _shields += 1
    try:
        yield
    finally:
        _shields -= 1


def interrupts() -> bool:
    """For a signal handler (main thread): whether it may raise now, outside a shielded block."""
    return _shields == 0
