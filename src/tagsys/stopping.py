"""A process-wide request to stop (SIGTERM). Once it is made, a run that ends with any error
was cancelled: interrupting a Spark call can surface as another error (py4j's "Answer from
Java side is empty") instead of the interruption itself."""

from __future__ import annotations

import threading

_requested = threading.Event()


def request_stop() -> None:
    _requested.set()


def stop_requested() -> bool:
    return _requested.is_set()


def reset() -> None:
    """Forget a stop request (a long-lived process that goes on, tests)."""
    _requested.clear()
