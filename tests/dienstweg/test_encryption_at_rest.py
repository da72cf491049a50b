"""Encryption at rest (DESIGN.md): no plaintext personal data in the family, member, consent,
evidence and audit tables; a ciphertext copied into another row does not decrypt; erasing a
family's data key makes all its encrypted data unreadable; the audit trail names no one."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from django.db import connection

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Consent, DataKey, Evidence, Family, HouseholdMember
from dienstweg.vault import VaultError
from tests.builders import project_dpo
from tests.conftest import consent_data, member, verified_client

ADDRESS = "Horster Straße 30, 45964 Gladbeck"
PHONE = "02043 123456"
NOTES = "Mutter sucht Teilzeitstelle; Kita-Platz für Emre fehlt."
WITNESS_NOTE = "Belehrung durch A. Albers im Beisein von P. Peters"
REVOCATION_NOTE = "Widerruf am Telefon, Rückruf erbeten"
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"% Unterschrift: Ayse Yilmaz, Leyla Yilmaz\n%%EOF\n"
)

PLAINTEXT = [
    "Ayşe",
    "Yılmaz",
    "Leyla",
    "Emre",
    "Horster Straße",
    "Horster",
    PHONE,
    NOTES,
    "Teilzeitstelle",
    WITNESS_NOTE,
    "P. Peters",
    REVOCATION_NOTE,
    "Rückruf",
    "1988-04-12",
    "2010-01-20",
    "2016-09-01",
]
PERSONAS = [
    ("anna@example.org", "Anna Albers"),
    ("ben@example.org", "Ben Becker"),
    ("clara@example.org", "Clara Czerny"),
    ("dirk@example.org", "Dirk Dahl"),
    ("dora@example.org", "Dora Demir"),
]

# Constant statements: every column of every row, as the database holds it.
TABLES = {
    "dienstweg_family": "SELECT * FROM dienstweg_family",
    "dienstweg_householdmember": "SELECT * FROM dienstweg_householdmember",
    "dienstweg_consent": "SELECT * FROM dienstweg_consent",
    "dienstweg_evidence": "SELECT * FROM dienstweg_evidence",
    "audit_auditevent": "SELECT * FROM audit_auditevent",
}


@pytest.fixture
def recorded(network, family) -> Family:
    """The Yılmaz family with everything encrypted that the platform encrypts: an oral consent,
    a signed one with its scan (revoked with a note), and the record and scan opened."""
    actions.grant_consent(
        family, data=consent_data(network, family, witness_note=WITNESS_NOTE), by=network.anna
    )
    signed = actions.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            method=Consent.Method.SIGNED_FORM,
            witness_note="",
            evidence=PDF,
            capacity=Consent.Capacity.PARENT_FOR_CHILD,
            on_behalf_of=member(family, "Leyla"),
        ),
        by=network.anna,
    )
    client = verified_client(network.anna)
    assert client.get(f"/familien/{family.pk}/").status_code == 200
    evidence = client.get(f"/familien/{family.pk}/einwilligung/{signed.pk}/nachweis/")
    assert evidence.content == PDF
    revoked = client.post(
        f"/familien/{family.pk}/einwilligung/{signed.pk}/widerruf/",
        {"note": REVOCATION_NOTE, "confirm": "ja"},
    )
    assert revoked.status_code == 302
    return family


def cell_forms(cell: object) -> tuple[bytes, str]:
    """A raw cell as bytes and as text, whatever type the driver returned."""
    if isinstance(cell, memoryview | bytearray | bytes):
        raw = bytes(cell)
        return raw, raw.decode("latin-1")
    if isinstance(cell, dict | list):
        text = json.dumps(cell)
    elif isinstance(cell, date | datetime):
        text = cell.isoformat()
    else:
        text = str(cell)
    return text.encode(), text


def needles(text: str) -> list[bytes]:
    """Ways TEXT could be stored: UTF-8, and \\u-escaped as JSON writes it."""
    return [text.encode(), json.dumps(text)[1:-1].encode()]


def test_no_plaintext_in_the_tables(recorded):
    rows_seen = {}
    found = []
    for table, sql in TABLES.items():
        with connection.cursor() as cursor:
            cursor.execute(sql)
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
        rows_seen[table] = len(rows)
        for row in rows:
            for column, cell in zip(columns, row, strict=True):
                raw, _text = cell_forms(cell)
                for secret in PLAINTEXT:
                    if any(needle in raw for needle in needles(secret)):
                        found.append(f"{table}.{column}: {secret!r}")
                if PDF in raw or b"Unterschrift" in raw:
                    found.append(f"{table}.{column}: the evidence scan")
    assert not found, found
    # The scan did read the data it was meant to read.
    assert rows_seen["dienstweg_family"] == 1
    assert rows_seen["dienstweg_householdmember"] == 3
    assert rows_seen["dienstweg_consent"] == 2
    assert rows_seen["dienstweg_evidence"] == 1
    assert rows_seen["audit_auditevent"] >= 6


def test_the_encrypted_values_read_back_through_the_models(recorded):
    family = Family.objects.get(pk=recorded.pk)
    assert (
        family.decrypt_field("address"),
        family.decrypt_field("phone"),
        family.decrypt_field("notes"),
    ) == (
        ADDRESS,
        PHONE,
        NOTES,
    )
    assert Evidence.objects.get().decrypt_field_bytes("content") == PDF
    notes = {c.decrypt_field("witness_note") for c in Consent.objects.all()}
    assert notes == {WITNESS_NOTE, ""}
    assert Consent.objects.get(revoked_at__isnull=False).decrypt_field("revocation_note") == (
        REVOCATION_NOTE
    )


def raw_id(model, pk) -> object:
    return model._meta.pk.get_db_prep_value(pk, connection)


def test_ciphertext_copied_into_another_row_does_not_decrypt(recorded):
    ayse, leyla = member(recorded, "Ayşe"), member(recorded, "Leyla")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT first_name_enc FROM dienstweg_householdmember WHERE id = %s",
            [raw_id(HouseholdMember, ayse.pk)],
        )
        (ciphertext,) = cursor.fetchone()
        cursor.execute(
            "UPDATE dienstweg_householdmember SET first_name_enc = %s WHERE id = %s",
            [bytes(ciphertext), raw_id(HouseholdMember, leyla.pk)],
        )

    with pytest.raises(VaultError):
        HouseholdMember.objects.get(pk=leyla.pk).decrypt_field("first_name")
    # The same bytes still decrypt where they belong.
    assert HouseholdMember.objects.get(pk=ayse.pk).decrypt_field("first_name") == "Ayşe"


def test_ciphertext_copied_into_another_column_does_not_decrypt(recorded):
    ayse = member(recorded, "Ayşe")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dienstweg_householdmember SET last_name_enc = first_name_enc WHERE id = %s",
            [raw_id(HouseholdMember, ayse.pk)],
        )
    with pytest.raises(VaultError):
        HouseholdMember.objects.get(pk=ayse.pk).decrypt_field("last_name")


def encrypted_fields(instance) -> list[str]:
    """The names of the instance's encrypted fields that hold a ciphertext."""
    return [
        field.name.removesuffix("_enc")
        for field in instance._meta.concrete_fields
        if field.name.endswith("_enc") and getattr(instance, field.name)
    ]


def fresh_encrypted_rows(family: Family) -> list[object]:
    return [
        Family.objects.get(pk=family.pk),
        *HouseholdMember.objects.filter(family_id=family.pk),
        *Consent.objects.filter(family_id=family.pk),
        *Evidence.objects.filter(family_id=family.pk),
    ]


def test_erasing_the_data_key_makes_every_encrypted_field_unreadable(network, recorded):
    key_id = recorded.data_key_id
    before = fresh_encrypted_rows(recorded)
    for row in before:
        for name in encrypted_fields(row):
            row.decrypt_field_bytes(name)  # readable until the key goes
    assert sum(len(encrypted_fields(row)) for row in before) >= 3 + 3 * 3 + 2 + 1 + 1

    actions.erase_family_key(recorded, by=project_dpo(network), reason="Löschersuchen nach Art. 17")

    assert not DataKey.objects.filter(pk=key_id).exists()
    after = fresh_encrypted_rows(recorded)
    assert after[0].data_key_id is None
    unreadable = 0
    for row in after:
        for name in encrypted_fields(row):
            with pytest.raises(VaultError):
                row.decrypt_field_bytes(name)
            unreadable += 1
    assert unreadable == sum(len(encrypted_fields(row)) for row in before)
    event = AuditEvent.objects.get(action="family.key_destroyed")
    assert event.family_id == str(recorded.pk)


def test_erasing_twice_is_refused(network, recorded):
    actions.erase_family_key(recorded, by=project_dpo(network), reason="Löschersuchen")
    with pytest.raises(actions.ActionError):
        actions.erase_family_key(
            Family.objects.get(pk=recorded.pk), by=project_dpo(network), reason="Löschersuchen"
        )


def test_the_audit_trail_names_no_one(recorded):
    events = list(AuditEvent.objects.all())
    assert {event.action for event in events} >= {
        "family.registered",
        "consent.granted",
        "family.viewed",
        "consent.evidence_viewed",
        "consent.revoked",
    }
    names = ["Ayşe", "Yılmaz", "Yilmaz", "Leyla", "Emre", "Horster", PHONE]
    people = [value for persona in PERSONAS for value in persona]
    for event in events:
        text = " ".join(
            [
                json.dumps(event.details, ensure_ascii=False),
                event.purpose,
                event.target_type,
                event.target_id,
                event.family_ref,
                event.actor_label,
            ]
        ).casefold()
        for secret in [*names, *people, *PLAINTEXT]:
            assert secret.casefold() not in text, (event.action, secret)
        assert "@" not in text
