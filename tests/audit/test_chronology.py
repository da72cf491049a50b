"""The sealer refuses an event dated before what it has already sealed (less a tolerance for
clock skew), or after its own clock: it seals around it, lists it in the seal, records the
refusal; audit_verify names it every time and it never counts as genuine."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit import anchor, chronology, hashing
from audit.models import AuditEvent, AuditSeal
from audit.trail import record
from audit.verify import REFUSED, SEAL, verify
from tests.audit.helpers import record_committed, seal_all, triggers_lifted
from tests.audit.test_out_of_order_commit import Writer

COPIED_COLUMNS = ", ".join(
    field for field in hashing.EVENT_FIELDS if field not in {"id", "occurred_at", "txid"}
)


def insert_as_table_owner(copy_of: AuditEvent, occurred_at) -> int:
    """What someone with the database's password can do without lifting any trigger: a
    copy of an event, with a time of their choosing, straight into the unsealed tail."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_auditevent (occurred_at, {COPIED_COLUMNS}) "  # noqa: S608
            f"SELECT %s, {COPIED_COLUMNS} FROM audit_auditevent WHERE id = %s",
            [occurred_at, copy_of.id],
        )
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]


def record_at(moment, count: int = 1) -> list[AuditEvent]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return record_committed(count)


def test_backdated_insert_is_refused_and_the_rest_sealed(trail: None) -> None:
    (first,) = record_committed(1)
    seal_all()
    before = record_committed(2)
    forged = insert_as_table_owner(first, timezone.now() - timedelta(days=2))
    after = record_committed(2)
    seals = seal_all()

    refusing = seals[0]
    [refusal] = chronology.unpack(bytes(refusing.refused))
    assert (refusal.event_id, refusal.reason) == (forged, chronology.BACKDATED)
    assert refusal.bound >= AuditEvent.objects.get(pk=first.pk).occurred_at
    # Sealed around it: every other event is in the seal, the forged one listed as refused.
    assert refusing.event_count == 5
    assert AuditEvent.objects.filter(pk__in=[e.pk for e in before + after]).count() == 4
    notice = AuditEvent.objects.get(action="audit.event_refused")
    assert notice.actor_label == "system:audit_seal"
    assert (notice.target_type, notice.target_id) == ("audit.event", str(forged))
    assert notice.details == {"seal": refusing.number, "event": forged, "reason": "backdated"}

    report = verify()
    assert [(f.kind, f.event_id) for f in report.findings] == [(REFUSED, forged)]
    assert report.findings[0].text.startswith(
        f"Siegel {refusing.number}: Ereignis {forged} bei der Versiegelung abgewiesen, sein "
        "Zeitpunkt "
    )
    assert report.findings[0].text.endswith(
        "nachträglich eingefügt oder falsch datiert, es zählt nicht als echt."
    )
    assert report.refused == 1
    assert "davon 1 abgewiesen" in report.summary()


def test_refusal_is_reported_by_every_verification(trail: None) -> None:
    (first,) = record_committed(1)
    seal_all()
    forged = insert_as_table_owner(first, timezone.now() - timedelta(days=2))
    seal_all()
    for _run in range(2):
        out = StringIO()
        with pytest.raises(CommandError, match="NICHT bestanden"):
            call_command("audit_verify", stdout=out)
        assert f"Ereignis {forged} bei der Versiegelung abgewiesen" in out.getvalue()
    details = AuditEvent.objects.filter(action="audit.verified").latest("id").details
    assert details["refused"] == 1
    # A refusal is no doubt about the head: the run still remembers it for the next.
    assert anchor.last_verified() == anchor.Verified(
        details["head"], AuditSeal.objects.get(number=details["head"]).seal_hash, mock.ANY
    )


def test_event_within_the_tolerance_is_sealed_as_genuine(trail: None, settings) -> None:
    settings.AUDIT_CLOCK_SKEW_SECONDS = 120
    now = timezone.now()
    record_at(now)
    record_at(now - timedelta(seconds=100))  # committed a little out of order
    seal_all()
    assert verify().ok


def test_tolerance_is_configurable(trail: None, settings) -> None:
    settings.AUDIT_CLOCK_SKEW_SECONDS = 30
    now = timezone.now()
    record_at(now)
    (late,) = record_at(now - timedelta(seconds=100))
    seal_all()
    assert verify().event_ids(REFUSED) == [late.id]


def test_refusal_is_the_same_whatever_the_batch_size(trail: None) -> None:
    now = timezone.now()
    record_at(now - timedelta(hours=1), 3)
    record_at(now, 2)
    backdated = record_at(now - timedelta(hours=2), 1) + record_at(now - timedelta(hours=3), 1)
    record_at(now + timedelta(seconds=1), 2)
    seal_all(batch_size=2)
    expected = [event.id for event in backdated]
    assert verify().event_ids(REFUSED) == expected
    refused = [
        refusal.event_id
        for seal in AuditSeal.objects.order_by("number")
        for refusal in chronology.unpack(bytes(seal.refused))
    ]
    assert refused == expected


def test_event_dated_after_the_sealers_clock_is_refused(trail: None) -> None:
    """A future time would hold every later event back as 'backdated': it is refused
    itself, and those after it are sealed."""
    (future,) = record_at(timezone.now() + timedelta(days=1))
    later = record_committed(2)
    seal_all()
    report = verify()
    assert report.event_ids(REFUSED) == [future.id]
    assert "liegt nach der Uhr des Versiegelungsdienstes" in report.findings[0].text
    assert all(event.id not in report.event_ids(REFUSED) for event in later)


def test_backdated_event_in_the_very_first_batch_is_refused(trail: None) -> None:
    record_committed(2)
    (old,) = record_at(timezone.now() - timedelta(days=2))
    record_committed(1)
    seal_all()
    assert verify().event_ids(REFUSED) == [old.id]


def test_refused_list_cannot_be_dropped_unseen(trail: None) -> None:
    (first,) = record_committed(1)
    seal_all()
    insert_as_table_owner(first, timezone.now() - timedelta(days=2))
    seal = seal_all()[0]
    assert chronology.unpack(bytes(seal.refused))
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE audit_auditseal SET refused = %s WHERE number = %s", [b"", seal.number]
        )
    report = verify()
    assert (SEAL, f"Siegel {seal.number}: Inhalt verändert (Siegel-Hash passt nicht).") in [
        (f.kind, f.text) for f in report.findings
    ]
    assert not report.event_ids(REFUSED)


def test_deleting_the_refused_event_later_is_named_too(trail: None) -> None:
    (first,) = record_committed(1)
    seal_all()
    forged = insert_as_table_owner(first, timezone.now() - timedelta(days=2))
    seal_all()
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [forged])
    report = verify()
    assert report.event_ids(REFUSED) == [forged]  # the seal still lists it
    assert f"Ereignis {forged} wurde gelöscht." in " ".join(f.text for f in report.findings)


@pytest.mark.postgres
def test_event_of_a_transaction_that_commits_later_is_within_the_tolerance(
    trail: None,
) -> None:
    """PostgreSQL seals in (txid, id) order: an event recorded late in a transaction that
    began early precedes younger ones in that order. Within the tolerance that is fine."""
    writer = Writer()  # a second connection, with one open transaction
    try:
        writer.run(lambda: connection.cursor().execute("SELECT txid_current()"))
        (younger,) = record_committed(1)  # a higher txid, committed first
        moment = timezone.now() + timedelta(seconds=30)

        def record_later() -> int:
            with mock.patch("django.utils.timezone.now", return_value=moment):
                return record(None, "test.first").id

        older_txid_event = writer.run(record_later)
    finally:
        writer.commit()
    seal_all()
    order = list(AuditEvent.objects.order_by("txid", "id").values_list("id", flat=True))
    assert order.index(older_txid_event) < order.index(younger.id)
    assert verify().ok
