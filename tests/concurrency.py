"""Two real PostgreSQL connections at once: a worker thread on its own connection, and a
way to wait until one of them waits for a row lock (so interleavings are forced, not
hoped for). Used by the race tests of consent, referrals and acceptance."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection

TIMEOUT = 60.0  # seconds; no step of a passing test comes near it, even on a busy machine


class Worker:
    """Runs a function in a thread on its own database connection, which it closes at the
    end; keeps the result or the exception and the moment it finished."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self.done = threading.Event()
        self._work = work
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work()
        except BaseException as error:
            self.error = error
        finally:
            self.finished_at = time.monotonic()
            connection.close()
            self.done.set()

    def join(self) -> Any:
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "worker did not finish in time"
        if self.error is not None:
            raise self.error
        return self.result


def wait_for_lock_wait(count: int = 1) -> None:
    """Until COUNT other sessions of this database wait for a row lock."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            (waiting,) = cursor.fetchone()
        if waiting >= count:
            return
        assert time.monotonic() < deadline, "nobody waits for the lock"
        time.sleep(0.02)
