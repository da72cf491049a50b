"""Pruning: expired, sealed events leave the trail only through audit.pruning, behind a
signed checkpoint from which audit_verify continues; every other deletion is refused by
the database, and tampering is neither laundered nor hidden."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import hashing, ordering, signing, verify
from audit.models import AuditCheckpoint, AuditEvent, AuditPrunePermit, AuditSeal
from audit.pruning import PruningRefused, count_removable, removable, remove_expired
from audit.retention import expired_q
from tests.audit.helpers import record_committed, seal_all, skip_ids, triggers_lifted
from tests.audit.test_append_only import checkpoint_row

NOW = timezone.now()
LONG_AGO = NOW - timedelta(days=3 * 366)  # an access event past its retention
COPIED_COLUMNS = ", ".join(field for field in hashing.EVENT_FIELDS if field != "id")


def events_at(
    occurred_at: datetime, count: int = 1, action: str = "family.viewed"
) -> list[AuditEvent]:
    """COUNT committed events that happened at OCCURRED_AT (as record() wrote them then)."""
    with transaction.atomic():
        return [
            AuditEvent.objects.create(
                occurred_at=occurred_at,
                actor_id=7,
                actor_label="user:7",
                action=action,
                target_type="test.thing",
                target_id=str(number),
            )
            for number in range(count)
        ]


@pytest.fixture(autouse=True)
def history_out_of_order(settings) -> None:
    """These tests write years of history in an order of their own (old logins after old
    reads, say), which the sealer would refuse as backdated (audit/chronology.py): here
    every time counts as in order."""
    settings.AUDIT_CLOCK_SKEW_SECONDS = 100 * 366 * 24 * 3600


def ids(events: list[AuditEvent]) -> set[int]:
    return {event.id for event in events}


def present(events: list[AuditEvent]) -> set[int]:
    return set(AuditEvent.objects.filter(id__in=ids(events)).values_list("id", flat=True))


def texts(report: verify.Report) -> list[str]:
    return [finding.text for finding in report.findings]


@pytest.fixture
def pruned(trail: None) -> dict[str, list[AuditEvent]]:
    """Seals 1-3 (4 events each) over old logins, old reads and recent reads, pruned
    once; then an expired login that is not sealed yet."""
    logins = events_at(NOW - timedelta(days=91), 3, "auth.login_failed")
    old_reads = events_at(LONG_AGO, 3)
    recent = events_at(NOW - timedelta(days=1), 6)
    seal_all(batch_size=4)
    unsealed = events_at(NOW - timedelta(days=100), 1, "auth.login")
    removal = remove_expired(expired_q())
    assert (removal.removed, removal.seals) == (6, 2)
    return {"logins": logins, "old": old_reads, "recent": recent, "unsealed": unsealed}


# What the path removes, and what it leaves ------------------------------------------------


def test_removes_expired_sealed_events_only(pruned: dict[str, list[AuditEvent]]) -> None:
    assert present(pruned["logins"] + pruned["old"]) == set()
    assert present(pruned["recent"]) == ids(pruned["recent"])
    assert present(pruned["unsealed"]) == ids(pruned["unsealed"])  # expired, but unsealed
    assert not AuditPrunePermit.objects.exists()


def test_checkpoint_names_each_touched_seal_with_its_survivors(
    pruned: dict[str, list[AuditEvent]],
) -> None:
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.number, checkpoint.removed, checkpoint.seals) == (1, 6, 2)
    assert checkpoint.previous_hash == hashing.GENESIS
    entries = AuditCheckpoint.unpack(bytes(checkpoint.entries))
    assert [(entry.seal, entry.survivors) for entry in entries] == [(1, 0), (2, 2)]
    signing.public_key().verify(
        bytes.fromhex(checkpoint.signature), bytes.fromhex(checkpoint.checkpoint_hash)
    )


def test_records_audit_event(pruned: dict[str, list[AuditEvent]]) -> None:
    event = AuditEvent.objects.get(action="audit.events_removed")
    assert event.actor_label == "system:retention"
    assert event.details == {"removed": 6, "seals": 2, "checkpoint": 1}
    assert (event.target_type, event.target_id) == (
        "audit.auditcheckpoint",
        str(AuditCheckpoint.objects.get().pk),
    )


def test_verify_passes_after_removal(pruned: dict[str, list[AuditEvent]]) -> None:
    report = verify.verify()
    assert report.ok, report.lines()
    assert (report.checkpoints, report.removed_events, report.sealed_events) == (1, 6, 6)
    out = StringIO()
    call_command("audit_verify", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "Prüfung bestanden: 6 Ereignisse in 3 Siegeln, 2 noch nicht versiegelt; "
        "6 Ereignisse nach Ablauf der Aufbewahrungsfrist entfernt (1 Prüfpunkt)."
    )
    assert lines[1].startswith("Letztes Siegel: Nr. 3, Hash ")
    checkpoint = AuditCheckpoint.objects.get()
    assert lines[2] == f"Letzter Prüfpunkt: Nr. 1, Hash {checkpoint.checkpoint_hash}"


def test_verify_passes_after_a_second_run_over_the_same_seal(
    pruned: dict[str, list[AuditEvent]],
) -> None:
    seal_all(batch_size=4)
    later = NOW + timedelta(days=3 * 366)  # now the recent reads have expired too
    removal = remove_expired(expired_q(later), by="user:3")
    assert removal.checkpoint is not None and removal.checkpoint.number == 2
    assert present(pruned["recent"] + pruned["unsealed"]) == set()
    seals = [entry.seal for entry in AuditCheckpoint.unpack(bytes(removal.checkpoint.entries))]
    assert 2 in seals  # seal 2 touched a second time: the later entry wins
    report = verify.verify()
    assert report.ok, report.lines()
    assert report.checkpoints == 2
    assert report.sealed_events + report.removed_events == sum(
        AuditSeal.objects.values_list("event_count", flat=True)
    )
    call_command("audit_verify", stdout=StringIO())


def test_nothing_expired_makes_no_checkpoint(trail: None) -> None:
    record_committed(3)
    seal_all()
    removal = remove_expired(expired_q())
    assert (removal.checkpoint, removal.removed, removal.seals) == (None, 0, 0)
    assert not AuditCheckpoint.objects.exists()
    assert not AuditEvent.objects.filter(action="audit.events_removed").exists()


def test_count_removable_counts_expired_sealed_events(trail: None) -> None:
    events_at(LONG_AGO, 2)
    assert count_removable(expired_q()) == 0  # nothing sealed yet
    seal_all()
    events_at(LONG_AGO, 1)
    events_at(NOW, 1)
    assert count_removable(expired_q()) == 2
    assert set(removable(expired_q()).values_list("action", flat=True)) == {"family.viewed"}


def test_reports_progress_seal_by_seal(trail: None) -> None:
    events_at(LONG_AGO, 9)
    seal_all(batch_size=3)
    calls: list[tuple[int, int]] = []
    remove_expired(expired_q(), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_refuses_inside_a_transaction(trail: None) -> None:
    events_at(LONG_AGO, 2)
    seal_all()
    with (
        pytest.raises(RuntimeError, match="must not run inside a transaction"),
        transaction.atomic(),
    ):
        remove_expired(expired_q())
    assert AuditEvent.objects.count() == 2


# Tampering is named, never laundered ------------------------------------------------------


def test_changed_survivor_after_pruning_is_named(pruned: dict[str, list[AuditEvent]]) -> None:
    survivor = pruned["recent"][0]  # in seal 2, next to the removed reads
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_id = 99 WHERE id = %s", [survivor.id])
    report = verify.verify()
    assert report.event_ids(verify.CHANGED) == [survivor.id]
    assert texts(report) == [f"Siegel 2: Ereignis {survivor.id} wurde verändert."]
    with pytest.raises(CommandError, match="NICHT bestanden"):
        call_command("audit_verify", stdout=StringIO())


def test_deleted_survivor_after_pruning_is_reported(pruned: dict[str, list[AuditEvent]]) -> None:
    """Seal 2 lost two reads to the checkpoint: which of its absent events were removed is
    not recorded, so a missing survivor is counted; in untouched seal 3 it is named."""
    in_touched, in_untouched = pruned["recent"][1], pruned["recent"][3]
    with triggers_lifted() as cursor:
        cursor.execute(
            "DELETE FROM audit_auditevent WHERE id IN (%s, %s)", [in_touched.id, in_untouched.id]
        )
    report = verify.verify()
    assert texts(report) == [
        "Siegel 2: 1 Ereignis fehlt, das nach Prüfpunkt 1 noch vorhanden war.",
        f"Siegel 3: Ereignis {in_untouched.id} wurde gelöscht.",
    ]
    assert {finding.kind for finding in report.findings} == {verify.DELETED}


def test_inserted_and_restored_events_after_pruning_are_named(
    pruned: dict[str, list[AuditEvent]],
) -> None:
    removed, survivor = pruned["old"][2], pruned["recent"][0]
    with connection.cursor() as cursor:  # INSERT needs no trigger lifted
        cursor.execute(
            f"INSERT INTO audit_auditevent (id, {COPIED_COLUMNS}) "  # noqa: S608 (our constant)
            f"SELECT %s, {COPIED_COLUMNS} FROM audit_auditevent WHERE id = %s",
            [removed.id, survivor.id],
        )
    report = verify.verify()
    assert report.event_ids(verify.CHANGED) == [removed.id]  # back, but not as it was
    assert texts(report) == [
        f"Siegel 2: Ereignis {removed.id} wurde verändert.",
        "Siegel 2: 1 Ereignis mehr, als Prüfpunkt 1 bezeugt (entfernte Ereignisse wieder "
        "eingefügt).",
    ]


def test_forged_checkpoint_does_not_hide_a_deletion(trail: None) -> None:
    """Whoever drives the path by hand (a permit and a checkpoint of her own) can delete
    an event, but cannot sign: the checkpoint fails and the deletion is named."""
    events = events_at(NOW, 3)
    seal_all()
    entries = AuditCheckpoint.pack([])
    forger = signing.private_key(signing.new_private_key())
    fields = {
        "number": 1,
        "created_at": NOW,
        "entries_hash": verify.entries_hash(entries),
        "removed": 1,
        "seals": 0,
        "previous_hash": hashing.GENESIS,
        "key_id": signing.key_id(forger.public_key()),
    }
    digest = verify.checkpoint_hash(fields)
    del fields["entries_hash"]
    with transaction.atomic():
        AuditCheckpoint.objects.create(
            **fields,
            entries=entries,
            checkpoint_hash=digest,
            signature=forger.sign(bytes.fromhex(digest)).hex(),
        )
        AuditPrunePermit.objects.create(checkpoint=1)
        AuditEvent.objects.filter(id=events[1].id).delete()
        AuditPrunePermit.objects.all().delete()
    report = verify.verify()
    assert texts(report) == [
        f"Prüfpunkt 1: mit unbekanntem Schlüssel {fields['key_id']} signiert.",
        f"Siegel 1: Ereignis {events[1].id} wurde gelöscht.",
    ]


def test_changed_checkpoint_is_detected_and_attests_nothing(
    pruned: dict[str, list[AuditEvent]],
) -> None:
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditcheckpoint SET removed = 5 WHERE number = 1")
    report = verify.verify()
    found = texts(report)
    assert found[0] == "Prüfpunkt 1: Inhalt verändert (Prüfpunkt-Hash passt nicht)."
    # Without a valid checkpoint, the removed events count as deleted, each by id.
    assert set(report.event_ids(verify.DELETED)) == ids(pruned["logins"] + pruned["old"])


def test_unsigned_checkpoint_is_detected(pruned: dict[str, list[AuditEvent]]) -> None:
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditcheckpoint SET signature = %s", ["0" * 128])
    report = verify.verify()
    assert "Prüfpunkt 1: Signatur ungültig." in texts(report)
    assert not report.ok


def test_deleted_checkpoint_breaks_the_chain(pruned: dict[str, list[AuditEvent]]) -> None:
    seal_all(batch_size=4)
    remove_expired(expired_q(NOW + timedelta(days=3 * 366)))
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditcheckpoint WHERE number = 1")
    found = texts(verify.verify())
    assert "Prüfpunkt 2: Prüfpunkt Nr. 1 fehlt." in found
    assert (
        "Prüfpunkt 2: Verkettung unterbrochen, der Vorgänger-Hash passt nicht zum Anfang der "
        "Kette." in found
    )


@pytest.mark.parametrize("tampering", ["changed", "deleted", "inserted", "seal"])
def test_refuses_when_the_trail_was_tampered_with(trail: None, tampering: str) -> None:
    old = events_at(LONG_AGO, 4)
    skip_ids(10)  # a gap in the ids, as rollbacks leave on PostgreSQL
    kept = events_at(NOW, 2)
    seal_all(batch_size=10)
    with triggers_lifted() as cursor:
        if tampering == "changed":
            cursor.execute("UPDATE audit_auditevent SET actor_id = 1 WHERE id = %s", [kept[0].id])
        elif tampering == "deleted":
            cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [kept[1].id])
        elif tampering == "inserted":  # a copy slipped into the gap, inside the seal
            cursor.execute(
                f"INSERT INTO audit_auditevent (id, {COPIED_COLUMNS}) "  # noqa: S608
                f"SELECT %s, {COPIED_COLUMNS} FROM audit_auditevent WHERE id = %s",
                [old[-1].id + 5, kept[0].id],
            )
        else:
            cursor.execute("UPDATE audit_auditseal SET batch_hash = %s", ["f" * 64])
    before = AuditEvent.objects.count()
    with pytest.raises(
        PruningRefused, match="Löschen verweigert, nichts wurde entfernt"
    ) as refused:
        remove_expired(expired_q())
    assert refused.value.findings
    assert AuditEvent.objects.count() == before
    assert not AuditCheckpoint.objects.exists()


def test_refuses_when_a_checkpoint_was_tampered_with(pruned: dict[str, list[AuditEvent]]) -> None:
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditcheckpoint SET seals = 1")
    seal_all(batch_size=4)
    before = AuditEvent.objects.count()
    with pytest.raises(PruningRefused, match="Prüfpunkt 1: Inhalt verändert"):
        remove_expired(expired_q(NOW + timedelta(days=3 * 366)))
    assert AuditEvent.objects.count() == before


# The database refuses every other change ---------------------------------------------------


def seal_over(events: list[AuditEvent]) -> AuditSeal:
    """A seal row over EVENTS (only its last position matters to the triggers)."""
    last = max(events, key=lambda event: event.id)
    last.refresh_from_db(fields=["txid"])
    return AuditSeal.objects.create(
        number=1,
        sealed_at=timezone.now(),
        basis=ordering.basis(connection),
        fence=last.id + 1,
        last_txid=last.txid,
        last_event_id=last.id,
        event_count=len(events),
        batch_hash="0" * 64,
        manifest=b"",
        previous_hash=hashing.GENESIS,
        seal_hash="1" * 64,
        key_id="ed25519:test",
        signature="0" * 128,
    )


def refused(sql: str, params: list[object] | None = None) -> str:
    """Run SQL in a savepoint, so that the test's transaction survives the failure."""
    with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(error.value)


@pytest.fixture
def sealed(db: None) -> list[AuditEvent]:
    """Two sealed events, one unsealed, one checkpoint: all in the test's transaction."""
    events = [
        AuditEvent.objects.create(actor_label="system", action="auth.login") for _ in range(3)
    ]
    seal_over(events[:2])
    checkpoint_row()
    return events


@pytest.mark.parametrize("with_permit", [False, True])
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_auditevent",
        "UPDATE audit_auditevent SET action = 'family.edited'",
        "UPDATE audit_auditseal SET batch_hash = 'forged'",
        "DELETE FROM audit_auditseal",
        "UPDATE audit_auditcheckpoint SET removed = 7",
        "DELETE FROM audit_auditcheckpoint",
    ],
)
def test_raw_changes_are_refused_outside_the_path(
    sealed: list[AuditEvent], sql: str, with_permit: bool
) -> None:
    """A permit opens DELETE of sealed events, nothing else: here the unsealed one fails
    the whole statement."""
    if with_permit:
        AuditPrunePermit.objects.create(checkpoint=1)
    assert "append-only" in refused(sql)
    assert AuditEvent.objects.filter(action="auth.login").count() == 3
    assert AuditSeal.objects.filter(batch_hash="0" * 64).exists()
    assert AuditCheckpoint.objects.filter(removed=0).exists()


def test_deleting_a_sealed_event_needs_the_permit(sealed: list[AuditEvent]) -> None:
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE id = %s", [sealed[0].id])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=sealed[0].id).delete()
    AuditPrunePermit.objects.create(checkpoint=1)
    AuditEvent.objects.filter(id=sealed[0].id).delete()
    assert not AuditEvent.objects.filter(id=sealed[0].id).exists()


def test_the_permit_alone_cannot_delete_an_unsealed_event(sealed: list[AuditEvent]) -> None:
    AuditPrunePermit.objects.create(checkpoint=1)
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE id = %s", [sealed[2].id])
    assert AuditEvent.objects.filter(id=sealed[2].id).exists()


def test_the_permit_deletes_nothing_before_the_first_seal(db: None) -> None:
    event = AuditEvent.objects.create(actor_label="system", action="auth.login")
    AuditPrunePermit.objects.create(checkpoint=1)
    assert "append-only" in refused("DELETE FROM audit_auditevent WHERE id = %s", [event.id])


@pytest.mark.postgres
def test_a_committed_permit_opens_nothing_for_later_transactions(trail: None) -> None:
    """On PostgreSQL the permit counts only in the transaction that wrote it."""
    events = events_at(LONG_AGO, 2)
    seal_all()
    with transaction.atomic():
        AuditPrunePermit.objects.create(checkpoint=1)  # left behind, committed
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=events[0].id).delete()
    assert present(events) == ids(events)


# The result of a verification is recorded --------------------------------------------------


def test_audit_verify_records_its_result(pruned: dict[str, list[AuditEvent]]) -> None:
    call_command("audit_verify", stdout=StringIO())
    event = AuditEvent.objects.get(action="audit.verified")
    assert event.actor_label == "system:audit_verify"
    assert event.details == {
        "ok": True,
        "seals": 3,
        "sealed_events": 6,
        "unsealed": 2,
        "findings": 0,
        "head": 3,
        "checkpoints": 1,
        "removed_events": 6,
        "refused": 0,
        "anchored": 3,
    }


def test_audit_verify_records_a_failure_too(trail: None) -> None:
    events = record_committed(3)
    seal_all()
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[0].id])
    with pytest.raises(CommandError):
        call_command("audit_verify", stdout=StringIO())
    details = AuditEvent.objects.get(action="audit.verified").details
    assert (details["ok"], details["findings"], details["checkpoints"]) == (False, 1, 0)


def test_record_result_names_the_actor(trail: None) -> None:
    record_committed(2)
    seal_all()
    event = verify.record_result(verify.verify(), by="user:5")
    assert (event.action, event.actor_label, event.details["ok"]) == (
        "audit.verified",
        "user:5",
        True,
    )
