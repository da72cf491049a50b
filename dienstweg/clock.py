"""The clock that decides time windows of seconds to hours: session idle time and lifetime
(middleware, login, sockets), the sockets' rate limit and the authenticator's 30-second
steps. Call it as ``clock.now()``, not ``from dienstweg.clock import now``, so that tests
can replace it and move time on instead of waiting (the ``clock`` fixture in
tests/conftest.py). Dates of records keep ``timezone.now()``."""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch: what session times are stored in."""
    return time.time()


def monotonic() -> float:
    """Seconds for intervals in one process (how long since a socket asked the database)."""
    return time.monotonic()
