"""Reading ahead: batches the sealer hashes on other connections are the batches it would
have read alone, chained in order; the verifier re-hashing seals ahead still names every
change."""

from __future__ import annotations

import pytest
from django.db import connection

from audit import batches, hashing, ordering
from audit import verify as verify_module
from audit.models import AuditEvent, AuditSeal
from audit.verify import CHANGED, DELETED, INSERTED, verify
from tests.audit.helpers import (
    record_committed,
    seal_all,
    skip_ids,
    triggers_lifted,
    wait_until_final,
)

COPIED_COLUMNS = ", ".join(field for field in hashing.EVENT_FIELDS if field != "id")

pytestmark = pytest.mark.postgres  # the sealer reads ahead on PostgreSQL only


def _serial(after: ordering.Position | None, fence: int, limit: int) -> batches.Batch:
    """The batch the sealer reads alone: the first LIMIT final events after AFTER."""
    basis = ordering.basis(connection)
    events = AuditEvent.objects.filter(ordering.below(basis, fence), ordering.after(basis, after))
    return batches.read(events, basis, limit=limit)


def test_chain_built_ahead_equals_the_serial_one(trail: None) -> None:
    for _round in range(5):
        record_committed(5)  # transactions of their own: several txids per batch
    seals = seal_all(batch_size=4)
    assert sum(seal.event_count for seal in seals) == 25
    assert len(seals) >= 7
    after: ordering.Position | None = None
    for seal in seals:
        alone = _serial(after, seal.fence, 4)
        assert (seal.event_count, seal.batch_hash, bytes(seal.manifest)) == (
            alone.count,
            alone.batch_hash,
            alone.manifest,
        )
        assert (seal.last_txid, seal.last_event_id) == alone.last
        assert (seal.after_txid, seal.after_event_id) == (after or (None, None))
        after = alone.last
    assert [s.previous_hash for s in seals[1:]] == [s.seal_hash for s in seals[:-1]]
    assert verify().ok


def test_a_start_read_ahead_but_not_reached_is_dropped(trail: None) -> None:
    events = record_committed(10)
    wait_until_final()
    basis = ordering.basis(connection)
    with batches.ReadAhead("default", basis, limit=4, depth=2) as ahead:
        first, fence = ahead.batch(None, lambda: ordering.fence(connection, basis))
        assert first.count == 4
        # Another sealer sealed two events meanwhile: the sealer asks from there instead.
        txid = AuditEvent.objects.values_list("txid", flat=True).get(id=events[1].id)
        elsewhere = ordering.position(basis, txid, events[1].id)
        batch, fence = ahead.batch(elsewhere, lambda: ordering.fence(connection, basis))
    assert batch == _serial(elsewhere, fence, 4)
    assert [event_id for event_id, _digest in batch.entries] == [e.id for e in events[2:6]]
    assert AuditSeal.objects.count() == 0


def test_verification_read_ahead_names_changes_in_middle_batches(
    trail: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = record_committed(6)
    skip_ids(5)  # room for an event slipped in between two sealed ones
    events += record_committed(14)
    seals = seal_all(batch_size=4)
    read_ahead: list[object] = []
    original = verify_module._ReadAhead._read
    monkeypatch.setattr(
        verify_module._ReadAhead,
        "_read",
        lambda self, span: read_ahead.append(span) or original(self, span),
    )
    with triggers_lifted() as cursor:
        cursor.execute(  # seal 3 of 5
            "UPDATE audit_auditevent SET purpose = 'Auskunft' WHERE id = %s", [events[9].id]
        )
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[13].id])  # seal 4
        cursor.execute(  # seal 2, between events[5] and events[6]
            f"INSERT INTO audit_auditevent (id, {COPIED_COLUMNS}) "  # noqa: S608 (our constant)
            f"SELECT %s, {COPIED_COLUMNS} FROM audit_auditevent WHERE id = %s",
            [events[5].id + 1, events[5].id],
        )
    report = verify()
    assert len(read_ahead) == len(seals) == 5  # every seal's events hashed on a worker
    assert report.event_ids(CHANGED) == [events[9].id]
    assert report.event_ids(DELETED) == [events[13].id]
    assert report.event_ids(INSERTED) == [events[5].id + 1]
    assert {finding.seal for finding in report.findings} == {2, 3, 4}
