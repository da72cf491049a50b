"""The database itself refuses to change or remove audit events, seals and checkpoints
(the one deletion of expired, sealed events is tested in test_pruning.py)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.hashing import GENESIS
from audit.models import AuditCheckpoint, AuditEvent, AuditSeal
from audit.trail import record

STATEMENTS = {
    "audit_auditevent": [
        "UPDATE audit_auditevent SET action = 'family.edited'",
        "UPDATE audit_auditevent SET details = '{}', family_ref = ''",
        "DELETE FROM audit_auditevent",
    ],
    "audit_auditseal": [
        "UPDATE audit_auditseal SET batch_hash = 'forged'",
        "DELETE FROM audit_auditseal",
    ],
    "audit_auditcheckpoint": [
        "UPDATE audit_auditcheckpoint SET removed = 7",
        "DELETE FROM audit_auditcheckpoint",
    ],
}


def seal_row() -> AuditSeal:
    return AuditSeal.objects.create(
        number=1,
        sealed_at=timezone.now(),
        basis="id",
        fence=2,
        last_event_id=1,
        event_count=1,
        batch_hash="0" * 64,
        manifest=b"",
        previous_hash=GENESIS,
        seal_hash="1" * 64,
        key_id="ed25519:test",
        signature="0" * 128,
    )


def checkpoint_row() -> AuditCheckpoint:
    return AuditCheckpoint.objects.create(
        number=1,
        created_at=timezone.now(),
        entries=b"",
        removed=0,
        seals=0,
        previous_hash=GENESIS,
        checkpoint_hash="2" * 64,
        key_id="ed25519:test",
        signature="0" * 128,
    )


@pytest.fixture
def rows(db: None) -> None:
    record(None, "family.viewed", details={"consent_id": 1})
    seal_row()
    checkpoint_row()


def refused(sql: str) -> str:
    """Run SQL in a savepoint, so the test's transaction survives the failure."""
    with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    return str(error.value)


@pytest.mark.parametrize(
    "sql", [sql for statements in STATEMENTS.values() for sql in statements], ids=str
)
def test_update_and_delete_are_refused(rows: None, sql: str) -> None:
    assert "append-only" in refused(sql)
    assert AuditEvent.objects.filter(action="family.viewed", details={"consent_id": 1}).exists()
    assert AuditSeal.objects.filter(batch_hash="0" * 64).exists()
    assert AuditCheckpoint.objects.filter(removed=0).exists()


def test_orm_update_and_delete_are_refused(rows: None) -> None:
    event = AuditEvent.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.update(actor_label="user:99")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditSeal.objects.all().delete()
    assert AuditEvent.objects.get().actor_label == "system"


def test_inserting_is_still_allowed(rows: None) -> None:
    record(None, "family.viewed")
    assert AuditEvent.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.parametrize("table", sorted(STATEMENTS))
def test_truncate_is_refused_on_postgresql(rows: None, table: str) -> None:
    assert "append-only: TRUNCATE" in refused(f"TRUNCATE {table}")
    assert "append-only: TRUNCATE" in refused(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.exists() and AuditSeal.objects.exists()
    assert AuditCheckpoint.objects.exists()


@pytest.mark.postgres
def test_truncating_empty_tables_is_allowed_for_the_test_flush(db: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent, audit_auditseal, audit_auditcheckpoint")
