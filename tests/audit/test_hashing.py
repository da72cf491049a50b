"""The canonical event form: one definition, two implementations (Python, and SQL for
PostgreSQL) that must give the same bytes, awkward strings included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from audit import batches, hashing, ordering
from audit.models import AuditEvent
from audit.verify import verify
from tests.audit.helpers import record_committed, seal_all

AWKWARD = [
    'Anführungszeichen " und \\ Backslash',
    "Zeilen\numbruch\tTab\rWagenrücklauf\x08\x0c",
    "Steuerzeichen \x01\x1f und DEL \x7f",
    "Umlaute äöüß, Emoji 🙂, Zeilentrenner \u2028",
    "</script>&<>",
    "",
]


def test_canonical_form_of_an_event() -> None:
    row = (
        42,
        datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        12,
        "user:12",
        3,
        "family.viewed",
        "dienstweg.family",
        "0b7c9a1e",
        "0b7c9a1e",
        "F-2026-0042",
        "§ 67b SGB X",
        "4f1c",
        "192.0.2.7",
        '{"state": "active", "consent_id": 5}',
        None,
    )
    assert hashing.canonical_event(row).decode() == (
        '{"action":"family.viewed","actor_id":12,"actor_label":"user:12","agency_id":3,'
        '"details":{"state": "active", "consent_id": 5},"family_id":"0b7c9a1e",'
        '"family_ref":"F-2026-0042","id":42,"ip":"192.0.2.7",'
        '"occurred_at":"2026-03-01T09:30:00.000000+00:00","purpose":"§ 67b SGB X",'
        '"request_id":"4f1c","target_id":"0b7c9a1e","target_type":"dienstweg.family",'
        '"txid":null}'
    )
    assert json.loads(hashing.canonical_event(row))["details"] == {
        "state": "active",
        "consent_id": 5,
    }


def test_details_keys_follow_the_jsonb_order() -> None:
    details = {"state": "x", "id": 1, "consent_id": 2, "at": True, "zz": None}
    assert hashing.jsonb_text(details) == (
        '{"at": true, "id": 1, "zz": null, "state": "x", "consent_id": 2}'
    )


def test_naive_sqlite_timestamp_is_read_as_utc() -> None:
    assert hashing.timestamp("2026-03-01 09:30:00") == "2026-03-01T09:30:00.000000+00:00"
    assert hashing.timestamp("2026-03-01 09:30:00.5") == "2026-03-01T09:30:00.500000+00:00"


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("text", AWKWARD)
def test_postgresql_and_python_hash_awkward_events_alike(text: str) -> None:
    event = AuditEvent.objects.create(
        actor_label=text,
        action="family.viewed",
        purpose=text,
        family_ref=text[:32],
        ip="2001:db8::1",
        details={"note": text, "n": 2**62, "flag": False, "nothing": None, "list": [1, "a"]},
    )
    events = AuditEvent.objects.filter(id=event.id)
    in_database = batches.read(events, ordering.TXID, in_database=True)
    in_python = batches.read(events, ordering.TXID, in_database=False)
    assert in_database == in_python
    assert in_database.count == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_jsonb_text_matches_postgresql() -> None:
    details = {"b": 1, "a": 'ä"\\\n', "ccc": [True, None, {"y": 1, "x": "2"}], "dd": -5}
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [json.dumps(details)])
        assert cursor.fetchone()[0] == hashing.jsonb_text(details)


@pytest.mark.postgres
def test_trail_sealed_by_postgresql_verifies_in_python(trail: None) -> None:
    record_committed(7, details={"consent_id": 1, "state": "active"})
    seal_all(batch_size=3)
    report = verify(in_database=False)
    assert report.ok, report.lines()
    assert report.sealed_events == 7
