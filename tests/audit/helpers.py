"""Helpers for the audit tests: record committed events, lift the append-only triggers to
tamper with the trail as a database owner could, seal everything that can be sealed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from audit import ordering
from audit.hashing import read_manifest
from audit.models import AuditCheckpoint, AuditEvent, AuditPrunePermit, AuditSeal
from audit.sealing import BATCH_SIZE, seal_pending
from audit.trail import record

# The SQLite triggers as they stand after the latest migration that changed them.
TRIGGERS = import_module("audit.migrations.0004_pruning").SQLITE_TRIGGERS


@dataclass
class Person:
    """Stands in for a staff account: record() needs only its primary key."""

    pk: int


@dataclass
class Family:
    pk: uuid.UUID
    reference: str


def record_committed(
    count: int = 1, action: str = "family.viewed", **kwargs: Any
) -> list[AuditEvent]:
    """COUNT events, recorded and committed in one transaction."""
    with transaction.atomic():
        return [
            record(Person(pk=7), action, target=("test.thing", str(number)), **kwargs)
            for number in range(count)
        ]


def postgresql() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def triggers_lifted() -> Iterator[CursorWrapper]:
    """A cursor for which the append-only triggers do not fire: what the tables' owner can
    do (PostgreSQL: session_replication_role = replica for one transaction; SQLite: drop
    the triggers and create them again afterwards)."""
    if postgresql():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            yield cursor
        return
    with connection.cursor() as cursor:
        for name in TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        try:
            yield cursor
        finally:
            for sql in TRIGGERS.values():
                cursor.execute(sql)


def empty_audit_tables() -> None:
    with triggers_lifted() as cursor:
        for model in (AuditPrunePermit, AuditCheckpoint, AuditSeal, AuditEvent):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")  # noqa: S608 (our tables)


def skip_ids(count: int) -> None:
    """Make the next event id jump by COUNT, leaving a gap (as rollbacks do on PostgreSQL)."""
    with connection.cursor() as cursor:
        if postgresql():
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), "
                "(SELECT MAX(id) FROM audit_auditevent) + %s)",
                [count],
            )
        else:
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = seq + %s WHERE name = 'audit_auditevent'",
                [count],
            )


def unsealed_count() -> int:
    basis = ordering.basis(connection)
    last = AuditSeal.objects.order_by("-number").values("last_txid", "last_event_id").first()
    position = (
        None if last is None else ordering.position(basis, last["last_txid"], last["last_event_id"])
    )
    return AuditEvent.objects.filter(ordering.after(basis, position)).count()


def wait_until_final(timeout: float = 60.0) -> None:
    """Wait until every committed event lies below the sealer's fence (PostgreSQL: until
    no transaction elsewhere in the cluster, older than ours, is still running)."""
    if not postgresql():
        return
    deadline = time.monotonic() + timeout
    newest = AuditEvent.objects.order_by("-txid").values_list("txid", flat=True).first()
    while newest is not None and ordering.fence(connection, ordering.TXID) <= newest:
        if time.monotonic() > deadline:
            raise TimeoutError("a transaction elsewhere holds the audit fence back")
        time.sleep(0.05)


def seal_all(*, batch_size: int = BATCH_SIZE, timeout: float = 60.0) -> list[AuditSeal]:
    """Seal until nothing committed is left. On PostgreSQL a transaction elsewhere in the
    cluster (another test run, a benchmark on another database) holds the fence back for a
    moment: wait for it first, so that the seals hold BATCH_SIZE events each as the tests
    expect, not what happened to lie below the fence at that moment."""
    wait_until_final(timeout)
    seals: list[AuditSeal] = []
    deadline = time.monotonic() + timeout
    while True:
        seals += seal_pending(batch_size=batch_size)
        if unsealed_count() == 0 or time.monotonic() > deadline:
            return seals
        time.sleep(0.05)


def sealed_ids() -> list[int]:
    """The event ids in the seals' manifests, in sealing order."""
    ids: list[int] = []
    for manifest in AuditSeal.objects.order_by("number").values_list("manifest", flat=True):
        ids += [event_id for event_id, _digest in read_manifest(bytes(manifest))]
    return ids
