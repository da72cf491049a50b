"""A consent is never edited (DESIGN.md "Consent"): the database refuses any change of a
consent row or its recipients, through the ORM or raw SQL, on SQLite and PostgreSQL alike
(dienstweg migration 0010). Revocation (once, its own columns) and the erasure of the
family record (unlinking the scan, blanking the notes) still work."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from dienstweg import actions
from dienstweg.models import Consent, Evidence, Family, User
from tests.conftest import PASSWORD, Network, consent_data, verified_client

PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.fixture
def signed(network: Network, family: Family) -> Consent:
    """Ayşe's signed consent, with its scan, for the Jobcenter and the Jugendamt."""
    return actions.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            recipients=[network.jobcenter, network.jugendamt],
            method=Consent.Method.SIGNED_FORM,
            evidence=PDF,
            witness_note="",
        ),
        by=network.anna,
    )


def snapshot(consent: Consent) -> dict[str, Any]:
    row = Consent.objects.filter(pk=consent.pk).values().get()
    row["witness_note_enc"] = bytes(row["witness_note_enc"])
    row["revocation_note_enc"] = bytes(row["revocation_note_enc"])
    recipients = Consent.recipients.through.objects.filter(consent_id=consent.pk)
    row["recipients"] = sorted(recipients.values_list("agency_id", flat=True))
    return row


def refused(change: Any) -> None:
    with pytest.raises(DatabaseError, match="consent is never changed"), transaction.atomic():
        change()


LATER = date(2099, 12, 31)


@pytest.mark.parametrize(
    "changes",
    [
        {"valid_until": LATER},
        {"valid_from": date(2000, 1, 1)},
        {"categories": ["identity", "health"]},
        {"purposes": ["referral", "case_coordination"]},
        {"capacity": Consent.Capacity.PARENT_FOR_CHILD},
        {"text_version": "gefälscht"},
        {"recorded_at": timezone.now() - timedelta(days=400)},
        {"recorded_by": None},
        {"evidence": None},
        {"witness_note_enc": b""},
        {"recipient_ids": [1, 2, 3, 4, 5]},
        # Revocation's columns, but without the revocation or beside another change.
        {"revocation_note_enc": b"nachgetragen"},
        {"revoked_by_id": None, "revoked_at": timezone.now(), "valid_until": LATER},
    ],
    ids=lambda changes: "+".join(changes),
)
def test_an_orm_update_is_refused(network: Network, signed: Consent, changes: dict) -> None:
    before = snapshot(signed)
    refused(lambda: Consent.objects.filter(pk=signed.pk).update(**changes))
    assert snapshot(signed) == before


def test_saving_a_changed_model_is_refused(signed: Consent) -> None:
    before = snapshot(signed)
    signed.valid_until = LATER
    refused(signed.save)
    assert snapshot(signed) == before


RAW = [
    "UPDATE dienstweg_consent SET valid_until = '2099-12-31'",
    "UPDATE dienstweg_consent SET categories = '[\"health\"]'",
    "UPDATE dienstweg_consent SET revoked_at = NULL, revoked_by_id = NULL",
    "UPDATE dienstweg_consent SET recipient_ids = '[]'",
    "DELETE FROM dienstweg_consent",
    "UPDATE dienstweg_consent_recipients SET agency_id = agency_id",
    "DELETE FROM dienstweg_consent_recipients",
]


@pytest.mark.parametrize("sql", RAW)
def test_raw_sql_is_refused(network: Network, signed: Consent, sql: str) -> None:
    # A revoked consent too: its revocation must not be undone.
    other = actions.grant_consent(
        signed.family, data=consent_data(network, signed.family), by=network.anna
    )
    actions.revoke_consent(other, note="Widerruf am Telefon", by=network.anna)
    before = [snapshot(signed), snapshot(other)]

    def execute() -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)

    refused(execute)
    assert [snapshot(signed), snapshot(other)] == before


def test_orm_delete_and_removing_a_recipient_are_refused(network: Network, signed: Consent) -> None:
    before = snapshot(signed)
    refused(signed.delete)
    refused(lambda: signed.recipients.remove(network.jugendamt))
    refused(signed.recipients.clear)
    assert snapshot(signed) == before


def test_no_agency_is_added_to_the_recipients_later(network: Network, signed: Consent) -> None:
    assert signed.recipient_ids == sorted([network.jobcenter.pk, network.jugendamt.pk])
    before = snapshot(signed)
    refused(lambda: signed.recipients.add(network.migration))
    through = Consent.recipients.through
    refused(lambda: through.objects.create(consent_id=signed.pk, agency_id=network.migration.pk))

    def raw_insert() -> None:
        consent_id = Consent._meta.pk.get_db_prep_value(signed.pk, connection)  # type: ignore[union-attr]
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO dienstweg_consent_recipients (consent_id, agency_id) VALUES (%s, %s)",
                [consent_id, network.migration.pk],
            )

    refused(raw_insert)
    assert snapshot(signed) == before


def test_revocation_sets_its_columns_once(network: Network, signed: Consent) -> None:
    revoked = actions.revoke_consent(signed, note="Widerruf am Telefon", by=network.anna)
    row = Consent.objects.get(pk=signed.pk)
    assert row.revoked_at == revoked.revoked_at and row.revoked_by == network.anna
    assert row.decrypt_field("revocation_note") == "Widerruf am Telefon"
    # Once revoked, the revocation itself is fixed: no second time, no other note.
    before = snapshot(signed)
    refused(lambda: Consent.objects.filter(pk=signed.pk).update(revoked_at=timezone.now()))
    refused(lambda: Consent.objects.filter(pk=signed.pk).update(revocation_note_enc=b"x"))
    assert snapshot(signed) == before


def test_the_erasure_unlinks_the_scan_and_blanks_the_notes_and_nothing_else(
    network: Network, signed: Consent
) -> None:
    actions.revoke_consent(signed, note="Widerruf am Telefon", by=network.anna)
    before = snapshot(signed)
    # Only for an erased family: the same change of a living one is refused.
    refused(lambda: Consent.objects.filter(pk=signed.pk).update(evidence=None))

    erased = actions.erase_family_record(signed.family, by="test", reason="Art. 17 DSGVO")

    assert erased.consents_kept == 1 and erased.evidence == 1
    after = snapshot(signed)
    assert after["evidence_id"] is None
    assert after["witness_note_enc"] == after["revocation_note_enc"] == b""
    unchanged = {"evidence_id", "witness_note_enc", "revocation_note_enc"}
    assert {k: v for k, v in after.items() if k not in unchanged} == {
        k: v for k, v in before.items() if k not in unchanged
    }
    assert not Evidence.objects.exists()
    # The erased family's consents stay as they are now.
    refused(lambda: Consent.objects.filter(pk=signed.pk).update(valid_until=LATER))


def test_an_account_that_recorded_a_consent_is_not_deleted(
    network: Network, signed: Consent
) -> None:
    """Deleting it would blank the consent's recorded_by (SET NULL): the database refuses,
    and the admin offers no deletion of such an account (it is deactivated instead)."""
    before = snapshot(signed)
    refused(network.anna.delete)
    assert snapshot(signed) == before
    ada = User.objects.create_superuser("ada@example.org", PASSWORD, full_name="Ada Admin")
    admin = verified_client(ada)
    assert admin.get(f"/admin/dienstweg/user/{network.anna.pk}/delete/").status_code == 403
    assert User.objects.filter(pk=network.anna.pk).exists()
    # One who never recorded a consent can still be deleted there.
    assert (
        admin.post(f"/admin/dienstweg/user/{network.dirk.pk}/delete/", {"post": "yes"}).status_code
        == 302
    )
    assert not User.objects.filter(pk=network.dirk.pk).exists()
