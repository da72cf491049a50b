"""The snapshot a referral hands over (referrals/actions/snapshot.py): exactly the shared
data, never the family record's notes field, encrypted in the referral's row.

Who does what here: Anna (coach at the project) sends to the Jobcenter under the `consent`
fixture, which names the Jobcenter for identity, household and employment data; Ben
(caseworker at the Jobcenter) receives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from dienstweg.actions import ActionError
from dienstweg.models import DataCategory
from referrals.models import Referral
from tests.builders import build_consenting_family, build_referral
from tests.conftest import prepared_while, verified_client
from tests.referrals.helpers import (
    EMPLOYMENT_NOTE,
    NAMES,
    NEED,
    SUMMARY,
    detail,
    receiver_can_view,
    refer,
)

HOUSEHOLD_NOTE = "Alleinerziehend, Bürgergeld seit 2023"
# From the family record's notes field (tests/conftest.py): never part of a snapshot.
FAMILY_NOTES_PART = "Teilzeitstelle; Kita-Platz"


def snapshot_of(referral: Referral) -> dict[str, Any]:
    referral.refresh_from_db()
    return json.loads(referral.decrypt_field("snapshot"))


def raw_row(referral: Referral) -> tuple[bytes, bytes]:
    """snapshot_enc and need_enc as the database holds them (no model, no decryption)."""
    pk = Referral._meta.pk.get_db_prep_value(referral.pk, connection)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute("SELECT snapshot_enc, need_enc FROM referrals_referral WHERE id = %s", [pk])
        snapshot, need = cursor.fetchone()
    return bytes(snapshot), bytes(need)


# The snapshot: exactly the shared data, encrypted


def test_send_with_covering_consent_delivers_exactly_the_shared_data(network, family, consent):
    referral = refer(
        network,
        family,
        categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD, DataCategory.EMPLOYMENT],
        notes={DataCategory.EMPLOYMENT: EMPLOYMENT_NOTE},
    )

    assert referral.state == Referral.State.SENT
    assert snapshot_of(referral) == {
        "notes": {"employment": EMPLOYMENT_NOTE},  # household shared, but nothing written
        "identity": {
            "members": [
                {"kind": "adult", "name": "Ayşe Yılmaz", "birth_date": "1988-04-12"},
                {"kind": "child", "name": "Leyla Yılmaz", "birth_date": "2010-01-20"},
                {"kind": "child", "name": "Emre Yılmaz", "birth_date": "2016-09-01"},
            ],
            "address": "Horster Straße 30, 45964 Gladbeck",
            "phone": "02043 123456",
        },
    }
    assert list(referral.consents.all()) == [consent]
    assert referral.access_until == consent.valid_until
    assert referral.sent_at is not None
    assert not referral.dpo_review
    assert receiver_can_view(network.ben, referral)


def test_snapshot_without_identity_category_holds_no_identity_data(network, family, consent):
    referral = refer(network, family, categories=[DataCategory.EMPLOYMENT])

    snapshot = snapshot_of(referral)
    assert snapshot == {"notes": {"employment": EMPLOYMENT_NOTE}}
    text = json.dumps(snapshot, ensure_ascii=False)
    for absent in [*NAMES, "Horster", "02043", "1988"]:
        assert absent not in text


def test_snapshot_never_holds_the_family_notes_field(network, family, consent):
    referral = refer(
        network,
        family,
        categories=[DataCategory.IDENTITY, DataCategory.HOUSEHOLD, DataCategory.EMPLOYMENT],
        notes={DataCategory.HOUSEHOLD: HOUSEHOLD_NOTE, DataCategory.EMPLOYMENT: EMPLOYMENT_NOTE},
    )

    text = json.dumps(snapshot_of(referral), ensure_ascii=False)
    assert HOUSEHOLD_NOTE in text
    assert FAMILY_NOTES_PART not in text
    assert "notes" not in snapshot_of(referral)["identity"]


def test_notes_under_a_category_not_shared_are_refused(network, family, consent):
    with pytest.raises(ActionError, match="Angaben nur zu gewählten Datenkategorien"):
        refer(
            network,
            family,
            categories=[DataCategory.EMPLOYMENT],
            notes={DataCategory.HOUSEHOLD: HOUSEHOLD_NOTE},
        )
    assert not Referral.objects.exists()


def test_page_sends_only_the_notes_of_checked_categories(network, family, consent, anna_client):
    response = anna_client.post(
        reverse("referral_new", args=[family.pk]),
        {
            "to_agency": network.jobcenter.pk,
            "need": NEED,
            "summary": SUMMARY,
            "categories": ["employment"],
            "note_employment": EMPLOYMENT_NOTE,
            "note_household": HOUSEHOLD_NOTE,  # written, but the category is not checked
            "send": "",
        },
    )

    referral = Referral.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail(referral)
    assert referral.state == Referral.State.SENT
    assert referral.categories == ["employment"]
    assert snapshot_of(referral) == {"notes": {"employment": EMPLOYMENT_NOTE}}
    assert HOUSEHOLD_NOTE not in referral.decrypt_field("category_notes")


def test_snapshot_and_need_are_encrypted_in_the_database_row(network, family, consent):
    referral = refer(network, family)

    snapshot, need = raw_row(referral)
    assert snapshot and need
    for plaintext in [*NAMES, "Horster Straße", "02043 123456", EMPLOYMENT_NOTE, "1988-04-12"]:
        assert plaintext.encode() not in snapshot
    assert NEED.encode() not in need
    assert b"Arbeitsvermittlung" not in need
    # The same row does hold them, encrypted: the test would notice an empty snapshot.
    assert "Ayşe Yılmaz" in referral.decrypt_field("snapshot")
    assert referral.decrypt_field("need") == NEED


def test_the_snapshot_page_writes_birth_dates_and_the_sender_as_a_reader_expects(
    network, family, consent
):
    referral = refer(network, family, categories=[DataCategory.IDENTITY, DataCategory.EMPLOYMENT])

    html = verified_client(network.ben).get(detail(referral)).content.decode()

    assert "Ayşe Yılmaz, geb. 12.04.1988" in html
    assert "1988-04-12" not in html
    assert f"Anna Albers, {network.project.name}</dd>" in html
    assert f"{network.project.name} (Anna Albers)" not in html


@pytest.mark.postgres
def test_the_referral_page_plans_its_queries_once(network, family, consent) -> None:
    """A page that reads a few rows by their ids (dienstweg.compiled.planned_once)."""
    referral = build_referral(network, family)
    client = verified_client(network.ben)
    prepared = prepared_while(client, reverse("referral_detail", args=[referral.pk]))
    assert any('FROM "referrals_referralevent"' in statement for statement in prepared)


def test_the_family_page_lists_the_familys_referrals_newest_first(network, family, consent):
    """The section a family page shows (referrals/sections.py): the referrals of this family
    that the reader may open, each linked, with the receiving agency and its state."""
    sent = build_referral(network, family)
    draft = build_referral(network, family, to=network.jugendamt, send=False)
    other = build_referral(network, build_consenting_family(network, 2))
    page = verified_client(network.anna).get(reverse("family_detail", args=[family.pk])).text
    section = page[page.index('id="referrals-heading"') :].split("</section>")[0]
    assert section.index(str(draft.pk)) < section.index(str(sent.pk))
    assert (
        f'<a href="{reverse("referral_detail", args=[sent.pk])}">{network.jobcenter.name}</a>'
        f": {Referral.State.SENT.label} (" in section
    )
    assert f"{network.jugendamt.name}</a>: {Referral.State.DRAFT.label} (" in section
    assert str(other.pk) not in section
