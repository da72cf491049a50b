"""audit_verify: re-hashes sealed history and names every changed, deleted or inserted
event, a broken chain and a bad signature; tampering is done as the tables' owner could,
with the append-only triggers lifted."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import batches, hashing, ordering, signing
from audit.models import AuditEvent, AuditSeal
from audit.sealing import SEAL_COLUMNS
from audit.verify import CHANGED, DELETED, INSERTED, SEAL, UNCOVERED, UNSEALABLE, verify
from tests.audit.helpers import (
    record_committed,
    seal_all,
    skip_ids,
    triggers_lifted,
)

COPIED_COLUMNS = ", ".join(field for field in hashing.EVENT_FIELDS if field != "id")


def sealed_trail(count: int, *, batch_size: int = 5, unsealed: int = 0) -> list[AuditEvent]:
    events = record_committed(count)
    seal_all(batch_size=batch_size)
    record_committed(unsealed)
    return events


def test_untouched_trail_passes_and_counts_the_unsealed_tail(trail: None) -> None:
    sealed_trail(12, unsealed=2)
    report = verify()
    assert report.ok, report.lines()
    assert report.summary() == (
        "Prüfung bestanden: 12 Ereignisse in 3 Siegeln, 2 noch nicht versiegelt."
    )


def test_empty_trail_passes(trail: None) -> None:
    assert (
        verify().summary()
        == "Prüfung bestanden: 0 Ereignisse in 0 Siegeln, 0 noch nicht versiegelt."
    )


def test_changed_event_is_named(trail: None) -> None:
    events = sealed_trail(12)
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET purpose = 'Auskunft', actor_id = 99 WHERE id = %s",
            [events[6].id],
        )
    report = verify()
    assert not report.ok
    assert report.event_ids(CHANGED) == [events[6].id]
    assert [finding.text for finding in report.findings] == [
        f"Siegel 2: Ereignis {events[6].id} wurde verändert."
    ]


def test_deleted_event_is_named(trail: None) -> None:
    events = sealed_trail(12)
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[11].id])
    report = verify()
    assert report.event_ids(DELETED) == [events[11].id]
    assert report.findings[0].text == f"Siegel 3: Ereignis {events[11].id} wurde gelöscht."
    assert len(report.findings) == 1


def test_inserted_event_is_named(trail: None) -> None:
    """Inserting needs no trigger lifted at all: only the seal can show it."""
    (first,) = record_committed(1)
    skip_ids(10)  # a gap in the ids, as rollbacks leave on PostgreSQL
    record_committed(2)
    seal_all()
    forged = first.id + 5
    with connection.cursor() as cursor:  # a copy of the first event, slipped into the gap
        cursor.execute(
            f"INSERT INTO audit_auditevent (id, {COPIED_COLUMNS}) "  # noqa: S608 (our constant)
            f"SELECT %s, {COPIED_COLUMNS} FROM audit_auditevent WHERE id = %s",
            [forged, first.id],
        )
    report = verify()
    assert report.event_ids(INSERTED) == [forged]
    assert [finding.text for finding in report.findings] == [
        f"Siegel 1: Ereignis {forged} wurde nachträglich eingefügt."
    ]


def test_changed_deleted_and_inserted_events_are_each_named(trail: None) -> None:
    events = sealed_trail(3, batch_size=10)
    skip_ids(5)
    later = sealed_trail(3, batch_size=10)
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET action = 'family.edited' WHERE id = %s", [events[0].id]
        )
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [later[1].id])
        cursor.execute(
            f"INSERT INTO audit_auditevent (id, {COPIED_COLUMNS}) "  # noqa: S608 (our constant)
            f"SELECT %s, {COPIED_COLUMNS} FROM audit_auditevent WHERE id = %s",
            [events[2].id + 1, events[2].id],
        )
    report = verify()
    assert report.event_ids(CHANGED) == [events[0].id]
    assert report.event_ids(DELETED) == [later[1].id]
    assert report.event_ids(INSERTED) == [events[2].id + 1]


def test_changed_seal_is_detected(trail: None) -> None:
    sealed_trail(10)
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditseal SET event_count = 4 WHERE number = 1")
    report = verify()
    assert "Siegel 1: Inhalt verändert (Siegel-Hash passt nicht)." in [
        finding.text for finding in report.findings
    ]


def test_resealed_forgery_fails_on_the_signature(trail: None) -> None:
    """Who changes an event and recomputes the seal as the sealer would still cannot sign."""
    events = sealed_trail(10)
    with triggers_lifted() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_id = 99 WHERE id = %s", [events[1].id])
    seal = AuditSeal.objects.get(number=1)
    basis = ordering.basis(connection)
    last = ordering.position(basis, seal.last_txid, seal.last_event_id)
    batch = batches.read(AuditEvent.objects.filter(ordering.up_to(basis, last)), basis)
    stored = AuditSeal.objects.values(*SEAL_COLUMNS, "manifest", "refused").get(number=1)
    forged = hashing.stored_seal_hash(
        {**stored, "batch_hash": batch.batch_hash, "manifest": batch.manifest}
    )
    with triggers_lifted() as cursor:
        cursor.execute(
            "UPDATE audit_auditseal SET batch_hash = %s, manifest = %s, seal_hash = %s "
            "WHERE number = 1",
            [batch.batch_hash, batch.manifest, forged],
        )
    report = verify()
    assert [finding.text for finding in report.findings] == [
        "Siegel 1: Signatur ungültig.",
        # The head anchored outside the database shows it too.
        f"Siegel 1: weicht vom außerhalb der Datenbank verankerten Kopf ab (verankert "
        f"{seal.seal_hash}, in der Datenbank {forged}): das Protokoll wurde ab hier ersetzt.",
        "Siegel 2: Verkettung unterbrochen, der Vorgänger-Hash passt nicht zu Siegel 1.",
    ]


def test_deleted_seal_breaks_the_chain_and_its_events_are_named(trail: None) -> None:
    events = sealed_trail(15)
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE number = 2")
    report = verify()
    texts = [finding.text for finding in report.findings]
    assert "Siegel 3: Siegel Nr. 2 fehlt." in texts
    assert "Siegel 3: Verkettung unterbrochen, der Vorgänger-Hash passt nicht zu Siegel 1." in texts
    assert report.event_ids(UNCOVERED) == [event.id for event in events[5:10]]
    assert {finding.kind for finding in report.findings} == {SEAL, UNCOVERED}


def test_deleted_first_seal_is_named_with_its_events(trail: None) -> None:
    events = sealed_trail(10)
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditseal WHERE number = 1")
    texts = [finding.text for finding in verify().findings]
    assert texts[:4] == [
        "Siegel 2: Siegel Nr. 1 fehlt.",
        "Siegel 2: Verkettung unterbrochen, der Vorgänger-Hash passt nicht zum Anfang der Kette.",
        "Siegel 2: beginnt nicht beim ersten Ereignis.",
        f"Ereignis {events[0].id} liegt in keinem Siegel (Lücke vor Siegel 2).",
    ]
    assert len(texts) == 3 + 5 + 1
    assert texts[-1].startswith("Siegel 1 fehlt in der Datenbank, ist aber außerhalb verankert")


def test_seals_of_an_unknown_key_fail(trail: None) -> None:
    sealed_trail(3)
    other = signing.public_key(signing.new_private_key())
    report = verify(public_keys=[other])
    assert [finding.text for finding in report.findings] == [
        f"Siegel 1: mit unbekanntem Schlüssel {signing.key_id(signing.public_key())} signiert."
    ]


@pytest.mark.postgres
def test_event_without_transaction_id_is_reported(trail: None) -> None:
    (event,) = sealed_trail(1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_auditevent (id, {COPIED_COLUMNS}) "  # noqa: S608 (our constant)
            f"SELECT id + 100, {COPIED_COLUMNS.replace('txid', 'NULL')} FROM audit_auditevent "
            "WHERE id = %s",
            [event.id],
        )
    report = verify()
    assert report.event_ids(UNSEALABLE) == [event.id + 100]


@pytest.mark.parametrize("in_database", [None, False])
def test_verify_makes_no_query_per_event(
    trail: None, django_assert_max_num_queries, in_database: bool | None
) -> None:
    sealed_trail(300, batch_size=100)
    # The newest seal's number (read under the anchor's lock), the seal list, per seal its
    # row and its events, the tail (and on PostgreSQL the events without txid): 11 queries
    # for 300 events, as for 3 million in 3 seals.
    with django_assert_max_num_queries(11):
        report = verify(in_database=in_database)
    assert report.ok
    assert report.sealed_events == 300


@pytest.mark.parametrize("options", [[], ["--independent"]])
def test_audit_verify_command_reports_a_pass_in_german(trail: None, options: list[str]) -> None:
    sealed_trail(5, unsealed=1)
    out = StringIO()
    call_command("audit_verify", *options, stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Prüfung bestanden: 5 Ereignisse in 1 Siegel, 1 noch nicht versiegelt."
    assert lines[1].startswith("Letztes Siegel: Nr. 1, Hash ")


def test_audit_verify_command_names_the_tampering_and_fails(trail: None) -> None:
    events = sealed_trail(5)
    with triggers_lifted() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[2].id])
    out = StringIO()
    with pytest.raises(CommandError, match="Prüfung NICHT bestanden: 1 Befund"):
        call_command("audit_verify", "--independent", stdout=out)
    assert f"  Siegel 1: Ereignis {events[2].id} wurde gelöscht." in out.getvalue().splitlines()


def test_audit_verify_command_checks_against_the_dpo_public_key(trail: None) -> None:
    sealed_trail(3)
    printed = StringIO()
    call_command("audit_public_key", stdout=printed)
    public = printed.getvalue().splitlines()[1].rsplit(" ", 1)[1]
    call_command("audit_verify", "--public-key", public, stdout=StringIO())
    stranger = signing.public_base64(signing.public_key(signing.new_private_key()))
    with pytest.raises(CommandError):
        call_command("audit_verify", "--public-key", stranger, stdout=StringIO())
