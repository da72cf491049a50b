"""Ids commit out of order on PostgreSQL: the sealer must not seal an event while an older
transaction can still commit one before it. Two connections: the test's own, and a writer
thread with its own Django connection and one open transaction."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from audit.sealing import seal_pending
from audit.trail import record
from audit.verify import verify
from tests.audit.helpers import record_committed, seal_all, sealed_ids, wait_until_final

pytestmark = pytest.mark.postgres

Step = Callable[[], Any]


class Writer:
    """A second connection that runs steps, one at a time, in a single open transaction
    and commits when told to."""

    def __init__(self) -> None:
        self._steps: queue.Queue[Step | None] = queue.Queue()
        self._results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._work)
        self._thread.start()

    def _work(self) -> None:
        try:
            with transaction.atomic():
                while (step := self._steps.get(timeout=30)) is not None:
                    try:
                        self._results.put((True, step()))
                    except Exception as exc:
                        self._results.put((False, exc))
                        raise
        finally:
            connection.close()

    def run(self, step: Step) -> Any:
        self._steps.put(step)
        ok, value = self._results.get(timeout=30)
        if not ok:
            raise value
        return value

    def commit(self) -> None:
        self._steps.put(None)
        self._thread.join(30)


def transaction_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")
        return int(cursor.fetchone()[0])


def test_later_commit_is_not_sealed_ahead_of_an_open_earlier_transaction(trail: None) -> None:
    (before,) = record_committed(1, action="test.before")
    wait_until_final()  # no transaction elsewhere holds the fence below it
    writer = Writer()
    try:
        first = writer.run(lambda: record(None, "test.first").id)  # A: inserted, left open
        (second,) = record_committed(1, action="test.second")  # B: inserted after, committed
        seal_pending()
        # The sealer goes up to A's open transaction, which holds the fence, and no further.
        assert sealed_ids() == [before.id]
        report = verify()
        assert report.ok, report.lines()
        assert report.unsealed == 1  # B; A is not even visible yet
    finally:
        writer.commit()
    seal_all()
    report = verify()
    assert report.ok, report.lines()
    assert report.unsealed == 0
    assert sealed_ids() == [before.id, first, second.id]


def test_higher_id_from_an_older_transaction_is_sealed_in_its_place(trail: None) -> None:
    """A takes its transaction id, B records and commits, then A records (a higher id than
    B's) and commits last. Sealed in transaction order, A before B, and verified."""
    writer = Writer()
    try:
        older_txid = writer.run(transaction_id)
        (younger,) = record_committed(1, action="test.younger")
        older = writer.run(lambda: record(None, "test.older").id)
        assert older > younger.id  # ids out of commit order
        seal_pending()
        assert younger.id not in sealed_ids()
    finally:
        writer.commit()
    seal_all()
    report = verify()
    assert report.ok, report.lines()
    assert report.unsealed == 0
    assert AuditEvent.objects.get(id=older).txid == older_txid
    order = sealed_ids()
    assert order.index(older) < order.index(younger.id)  # by transaction, not by id
    assert sorted(order) == sorted(AuditEvent.objects.values_list("id", flat=True))
