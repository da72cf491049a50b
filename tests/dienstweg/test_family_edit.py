"""Keeping a family record current: address, phone, notes and household changed by the
owning project (any number of people, also at registration), audited as field names
only, shown as a history; referrals keep what they handed over.

Who may do what here: Anna (coach at the project) edits the Yılmaz family; Pia
(caseworker at the same project) may open it but not change it (403); Ben, Clara, Dirk
and Dora see nothing of it (404)."""

from __future__ import annotations

import json
from datetime import date
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Consent, Family, HouseholdMember, Membership
from tests.conftest import consent_data, make_staff, member, verified_client

NEW_ADDRESS = "Rentforter Straße 5, 45964 Gladbeck"
NEW_PHONE = "0157 9990001"
NEW_NOTES = "Kita-Platz für Emre seit März zugesagt."


def edit_url(family: Family) -> str:
    return f"/familien/{family.pk}/bearbeiten/"


def rows_of(family: Family) -> list[dict[str, str]]:
    """The household as the edit form shows it, one dict per person."""
    return [
        {
            "id": str(m.pk),
            "kind": m.kind,
            "first_name": m.decrypt_field("first_name"),
            "last_name": m.decrypt_field("last_name"),
            "birth_date": m.birth_date.isoformat(),
        }
        for m in family.members.all()
    ]


def edit_post(
    family: Family,
    *,
    rows: list[dict[str, str]] | None = None,
    version: int | None = None,
    **fields: str,
) -> dict[str, str]:
    """The POST the edit page sends: contact fields (unchanged unless given), the version
    the page was shown at, and every household row (unchanged unless ROWS)."""
    rows = rows_of(family) if rows is None else rows
    initial = sum(1 for row in rows if row.get("id"))
    data = {
        "address": family.decrypt_field("address"),
        "phone": family.decrypt_field("phone"),
        "notes": family.decrypt_field("notes"),
        "version": str(actions.family_version(family) if version is None else version),
        "members-TOTAL_FORMS": str(len(rows)),
        "members-INITIAL_FORMS": str(initial),
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"members-{index}-{key}"] = value
    data.update(fields)
    return data


def names(family: Family) -> list[str]:
    return [m.display_name for m in HouseholdMember.objects.filter(family=family)]


def contact(family: Family) -> tuple[str, str, str]:
    family.refresh_from_db()
    return tuple(family.decrypt_field(f) for f in ("address", "phone", "notes"))  # type: ignore[return-value]


@pytest.fixture
def pia(network):
    """A caseworker of the project: she opens the family, but changes are for coaches and
    leads."""
    return make_staff("pia@example.org", "Pia Peters", network.project, Membership.Role.CASEWORKER)


# Editing


def test_coach_changes_address_phone_and_notes(network, family, anna_client):
    response = anna_client.post(
        edit_url(family), edit_post(family, address=NEW_ADDRESS, phone=NEW_PHONE, notes=NEW_NOTES)
    )

    assert response.status_code == 302
    assert response["Location"] == f"/familien/{family.pk}/"
    assert contact(family) == (NEW_ADDRESS, NEW_PHONE, NEW_NOTES)
    html = anna_client.get(response["Location"]).content.decode()
    assert "Änderungen gespeichert." in html
    assert NEW_ADDRESS in html and NEW_PHONE in html


def test_edit_page_shows_the_record_to_change(family, anna_client):
    html = anna_client.get(edit_url(family)).content.decode()
    assert "Horster Straße 30, 45964 Gladbeck" in html
    assert 'value="Leyla"' in html
    assert "weitere Person hinzufügen" in html
    assert "Person aus dem Haushalt entfernen" in html


def test_coach_adds_a_child_and_removes_another(network, family, anna_client):
    rows = rows_of(family)
    emre = next(row for row in rows if row["first_name"] == "Emre")
    emre["DELETE"] = "on"
    rows.append(
        {"kind": "child", "first_name": "Deniz", "last_name": "Yılmaz", "birth_date": "2024-05-02"}
    )

    response = anna_client.post(edit_url(family), edit_post(family, rows=rows))

    assert response.status_code == 302
    assert names(family) == ["Ayşe Yılmaz", "Leyla Yılmaz", "Deniz Yılmaz"]


def test_a_name_can_be_corrected(family, anna_client):
    rows = rows_of(family)
    rows[1]["first_name"] = "Leila"
    anna_client.post(edit_url(family), edit_post(family, rows=rows))
    assert names(family) == ["Ayşe Yılmaz", "Leila Yılmaz", "Emre Yılmaz"]


def test_any_number_of_people_can_be_added(family, anna_client):
    rows = rows_of(family) + [
        {
            "kind": "child",
            "first_name": f"Kind{n}",
            "last_name": "Yılmaz",
            "birth_date": "2020-01-01",
        }
        for n in range(8)
    ]
    response = anna_client.post(edit_url(family), edit_post(family, rows=rows))
    assert response.status_code == 302
    assert HouseholdMember.objects.filter(family=family).count() == 11


def test_add_person_button_adds_an_empty_row_and_keeps_what_was_typed(family, anna_client):
    data = edit_post(family, address=NEW_ADDRESS, add_member="1")
    data["members-1-first_name"] = ""  # half-typed: no error yet, the form was not sent

    response = anna_client.post(edit_url(family), data)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="members-TOTAL_FORMS" value="4"' in html
    assert 'name="members-3-first_name"' in html
    assert f'value="{NEW_ADDRESS}"' in html
    assert 'role="alert"' not in html
    assert contact(family)[0] == "Horster Straße 30, 45964 Gladbeck"  # nothing saved


def test_nothing_changed_records_nothing(family, anna_client):
    before = AuditEvent.objects.filter(action="family.changed").count()
    response = anna_client.post(edit_url(family), edit_post(family), follow=True)
    assert "Nichts geändert." in response.content.decode()
    assert AuditEvent.objects.filter(action="family.changed").count() == before


def test_removing_a_person_a_consent_names_is_refused(network, family, anna_client):
    # Ayşe consents for Leyla: both are named by the consent, which must stay provable.
    actions.grant_consent(
        family,
        data=consent_data(
            network,
            family,
            on_behalf_of=member(family, "Leyla"),
            capacity=Consent.Capacity.PARENT_FOR_CHILD,
        ),
        by=network.anna,
    )
    rows = rows_of(family)
    rows[1]["DELETE"] = "on"

    response = anna_client.post(edit_url(family), edit_post(family, rows=rows, phone=NEW_PHONE))

    assert response.status_code == 200
    assert "Leyla Yılmaz kann nicht entfernt werden" in response.content.decode()
    assert names(family) == ["Ayşe Yılmaz", "Leyla Yılmaz", "Emre Yılmaz"]
    assert contact(family)[1] == "02043 123456"  # nothing of the change was saved


def test_a_household_without_an_adult_is_refused(family, anna_client):
    rows = rows_of(family)
    rows[0]["DELETE"] = "on"
    response = anna_client.post(edit_url(family), edit_post(family, rows=rows))
    assert "mindestens eine erwachsene Person" in response.content.decode()
    assert len(names(family)) == 3


def test_a_person_already_in_the_household_is_refused_beside_her_row(family, anna_client):
    rows = rows_of(family)
    leyla = next(row for row in rows if row["first_name"] == "Leyla")
    born = date.fromisoformat(leyla["birth_date"]).strftime("%d.%m.%Y")
    # Added again by mistake, typed a little differently: the same person all the same.
    rows.append(leyla | {"id": "", "first_name": "LEYLA", "last_name": "yılmaz"})
    changes = AuditEvent.objects.filter(action="family.changed").count()

    response = anna_client.post(edit_url(family), edit_post(family, rows=rows))

    html = unescape(response.content.decode())
    refusal = f"LEYLA yılmaz, geboren am {born}, gehört schon zum Haushalt."
    assert response.status_code == 200
    assert f'<a href="#id_members-3-first_name">Person 4 – Vorname: {refusal}' in html  # summary
    assert html.count(refusal) == 2  # and beside the row
    assert 'value="LEYLA"' in html  # as typed
    assert names(family) == ["Ayşe Yılmaz", "Leyla Yılmaz", "Emre Yılmaz"]
    assert AuditEvent.objects.filter(action="family.changed").count() == changes


def test_the_same_new_person_twice_in_one_go_is_refused(family, anna_client):
    deniz = {"kind": "child", "first_name": "Deniz", "last_name": "Yılmaz"}
    rows = rows_of(family) + [deniz | {"birth_date": "2024-05-02"}] * 2
    response = anna_client.post(edit_url(family), edit_post(family, rows=rows))
    assert "Deniz Yılmaz, geboren am 02.05.2024, gehört schon zum Haushalt." in unescape(
        response.content.decode()
    )
    assert len(names(family)) == 3
    # Another birth date: another child of the same name, welcome.
    rows[-1] = deniz | {"birth_date": "2025-01-20"}
    assert anna_client.post(edit_url(family), edit_post(family, rows=rows)).status_code == 302
    assert names(family)[-2:] == ["Deniz Yılmaz", "Deniz Yılmaz"]


def test_the_action_refuses_a_person_already_in_the_household(network, family):
    """Whatever calls it (the page checks the rows it shows), change_family compares the
    household as stored, decrypted, with the person added."""
    leyla = next(m for m in family.members.all() if m.decrypt_field("first_name") == "Leyla")
    again = actions.MemberData("child", "Leyla", "Yılmaz", leyla.birth_date)
    with pytest.raises(actions.ActionError, match="gehört schon zum Haushalt"):
        actions.change_family(family, added_members=[again], by=network.anna)
    assert len(names(family)) == 3


def test_a_person_of_another_family_is_refused(network, family, anna_client):
    other = actions.register_family(
        owner=network.project,
        members=[actions.MemberData("adult", "Murat", "Kaya", date(1979, 6, 30))],
        address="Hegestraße 12",
        phone="",
        notes="",
        by=network.anna,
    )
    rows = rows_of(family)
    rows.append(rows_of(other)[0] | {"first_name": "Hijacked"})

    response = anna_client.post(edit_url(family), edit_post(family, rows=rows))

    assert "gehört nicht (mehr) zu dieser Familie" in response.content.decode()
    assert names(other) == ["Murat Kaya"]


def test_a_change_made_meanwhile_is_not_overwritten(network, family, anna_client):
    shown = actions.family_version(family)
    actions.change_family(family, phone=NEW_PHONE, by=network.anna)  # someone else, meanwhile

    response = anna_client.post(
        edit_url(family), edit_post(family, version=shown, address=NEW_ADDRESS)
    )

    assert "Inzwischen hat jemand anderes diese Familie geändert" in response.content.decode()
    assert contact(family)[:2] == ("Horster Straße 30, 45964 Gladbeck", NEW_PHONE)


def test_an_erased_family_cannot_be_changed(network, family):
    actions.erase_family_record(family, by="system:test", reason="Art. 17")
    with pytest.raises(actions.ActionError):
        actions.change_family(family, phone=NEW_PHONE, by=network.anna)


# Who may edit


@pytest.mark.parametrize("who", ["ben", "clara", "dirk", "dora"])
def test_outsiders_get_404_and_nothing_changes(network, family, who):
    client = verified_client(getattr(network, who))
    data = edit_post(family, address=NEW_ADDRESS)
    assert client.get(edit_url(family)).status_code == 404
    assert client.post(edit_url(family), data).status_code == 404
    assert contact(family)[0] == "Horster Straße 30, 45964 Gladbeck"
    assert not AuditEvent.objects.filter(action="family.changed").exists()
    denied = AuditEvent.objects.filter(action="family.access_denied", family_id=str(family.pk))
    assert denied.count() == 2


def test_a_project_caseworker_gets_403_and_the_action_refuses_her(network, family, pia):
    client = verified_client(pia)
    assert client.get(f"/familien/{family.pk}/").status_code == 200
    assert "Familie bearbeiten" not in client.get(f"/familien/{family.pk}/").content.decode()
    assert client.post(edit_url(family), edit_post(family, phone=NEW_PHONE)).status_code == 403
    with pytest.raises(actions.NotAllowed):
        actions.change_family(family, phone=NEW_PHONE, by=pia)
    assert contact(family)[1] == "02043 123456"
    assert AuditEvent.objects.filter(
        action="family.access_denied", actor_id=pia.pk, family_id=str(family.pk)
    ).exists()


def test_outsider_calling_the_action_is_refused(network, family):
    with pytest.raises(actions.NotAllowed):
        actions.change_family(family, address=NEW_ADDRESS, by=network.ben)
    assert contact(family)[0] == "Horster Straße 30, 45964 Gladbeck"


# The trail: which fields, never their values


def test_change_is_audited_as_field_names_without_values(network, family, anna_client):
    rows = rows_of(family)
    rows[1]["first_name"] = "Leila"
    rows[2]["DELETE"] = "on"
    rows.append(
        {"kind": "child", "first_name": "Deniz", "last_name": "Yılmaz", "birth_date": "2024-05-02"}
    )
    anna_client.post(
        edit_url(family), edit_post(family, rows=rows, address=NEW_ADDRESS, notes=NEW_NOTES)
    )

    event = AuditEvent.objects.get(action="family.changed")
    assert (event.actor_id, event.family_id, event.agency_id) == (
        network.anna.pk,
        str(family.pk),
        network.project.pk,
    )
    assert event.details == {
        "address": True,
        "notes": True,
        "member_first_name": True,
        "members_changed": 1,
        "members_removed": 1,
        "members_added": 1,
    }
    # No value anywhere in the trail, old or new.
    trail = json.dumps(
        list(AuditEvent.objects.values("details", "purpose", "target_id")), ensure_ascii=False
    )
    for plaintext in ("Rentforter", "Kita-Platz", "Leila", "Deniz", "Emre", "2024-05-02"):
        assert plaintext not in trail


# Search and referrals


def test_search_finds_the_new_name_and_no_longer_the_old(network, family, anna_client):
    rows = rows_of(family)
    rows[0]["first_name"] = "Selin"
    anna_client.post(edit_url(family), edit_post(family, rows=rows))

    def found(query: str) -> bool:
        page = anna_client.post("/familien/", {"query": query}).content.decode()
        return family.reference in page

    # The search tokens follow the edit: part of the new name finds her, the old one not.
    assert found("Seli")
    assert found("Selin Yılmaz")
    assert not found("Ayşe")


def test_a_new_person_is_found_by_the_duplicate_check(network, family):
    actions.change_family(
        family,
        added_members=[actions.MemberData("child", "Deniz", "Yılmaz", date(2024, 5, 2))],
        by=network.anna,
    )
    found = actions.find_duplicates(
        [actions.MemberData("child", "Deniz", "Yılmaz", date(2024, 5, 2))], by=network.anna
    )
    assert found == [family]


def test_a_sent_referral_keeps_its_snapshot(network, family, consent, anna_client):
    from tests.referrals.helpers import refer

    referral = refer(network, family)
    before = referral.decrypt_field("snapshot")
    rows = rows_of(family)
    rows[0]["first_name"] = "Aische"
    rows.append(
        {"kind": "child", "first_name": "Deniz", "last_name": "Yılmaz", "birth_date": "2024-05-02"}
    )

    anna_client.post(
        edit_url(family), edit_post(family, rows=rows, address=NEW_ADDRESS, phone=NEW_PHONE)
    )

    referral.refresh_from_db()
    assert referral.decrypt_field("snapshot") == before
    html = verified_client(network.ben).get(f"/vermittlungen/{referral.pk}/").content.decode()
    assert "Horster Straße 30" in html and "Ayşe Yılmaz" in html
    assert NEW_ADDRESS not in html and "Deniz" not in html


# Registration: any number of people


def registration_of(people: int, owner: int, **extra: str) -> dict[str, str]:
    data = {
        "members-TOTAL_FORMS": str(people),
        "members-INITIAL_FORMS": "0",
        "owner": str(owner),
        "address": "Hegestraße 12, 45966 Gladbeck",
        "phone": "",
        "notes": "",
    }
    for row in range(people):
        data |= {
            f"members-{row}-kind": "adult" if row < 2 else "child",
            f"members-{row}-first_name": f"Person{row}",
            f"members-{row}-last_name": "Kaya",
            f"members-{row}-birth_date": f"{1980 + row}-01-15",
        }
    return data | extra


def test_more_than_five_people_are_registered_at_once(network, anna_client):
    response = anna_client.post("/familien/neu/", registration_of(8, network.project.pk))
    assert response.status_code == 302
    family = Family.objects.get()
    assert HouseholdMember.objects.filter(family=family).count() == 8


def test_register_add_person_button_offers_one_more_row(network, anna_client):
    data = registration_of(5, network.project.pk, add_member="1")
    response = anna_client.post("/familien/neu/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="members-TOTAL_FORMS" value="6"' in html
    assert 'value="Person4"' in html
    assert 'role="alert"' not in html
    assert not Family.objects.exists()


# History


def change_phone(family: Family, by: Any, times: int) -> None:
    for n in range(times):
        actions.change_family(family, phone=f"0157 {n:07d}", by=by)


def test_history_names_who_changed_which_fields(network, family, anna_client):
    anna_client.post(edit_url(family), edit_post(family, address=NEW_ADDRESS, notes=NEW_NOTES))
    html = anna_client.get(f"/familien/{family.pk}/").content.decode()
    history = html[html.index('id="changes-heading"') :]
    assert "Anna Albers, Familiencoaching Gladbeck (rebeq GmbH): Anschrift, Notizen" in history
    assert "Familie angelegt (3 Personen)" in history


def test_history_page_is_paginated_newest_first(network, family, anna_client, settings):
    settings.FAMILY_HISTORY_PAGE_SIZE = 2
    change_phone(family, network.anna, 3)
    first = anna_client.get(f"/familien/{family.pk}/verlauf/").content.decode()
    assert first.count("<li><time") == 2
    assert 'rel="next"' in first
    last = anna_client.get(f"/familien/{family.pk}/verlauf/?page=2").content.decode()
    assert "Familie angelegt" in last


def test_history_is_for_the_owning_project_only(network, family):
    assert verified_client(network.ben).get(f"/familien/{family.pk}/verlauf/").status_code == 404


def queries(client: Client, url: str) -> int:
    client.get(url)  # warm-up: the session's own queries
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("page", ["", "verlauf/", "bearbeiten/"])
def test_pages_queries_do_not_grow_with_the_changes(network, family, anna_client, page):
    url = f"/familien/{family.pk}/{page}"
    change_phone(family, network.anna, 1)
    with_one = queries(anna_client, url)
    change_phone(family, network.anna, 8)
    actions.change_family(
        family,
        added_members=[actions.MemberData("child", "Deniz", "Yılmaz", date(2024, 5, 2))],
        by=network.anna,
    )
    assert queries(anna_client, url) == with_one
