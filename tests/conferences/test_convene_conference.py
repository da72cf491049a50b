"""Convening a Familienkonferenz: who may, whom, on which consent, what is recorded."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import get_perms

from audit.models import AuditEvent
from conferences import actions
from conferences.models import Conference, Invitation
from dienstweg import actions as core
from dienstweg.actions import ActionError, NotAllowed
from dienstweg.models import Consent, DataCategory, Family, Notification
from tests.builders import conference_data
from tests.conftest import Network, verified_client


def test_invites_each_person_for_her_agency_with_its_consents(
    network: Network, conference: Conference, coordination: Consent
) -> None:
    invitations = {i.user: i for i in Invitation.objects.filter(conference=conference)}
    assert set(invitations) == {network.ben, network.clara}
    assert invitations[network.ben].agency == network.jobcenter
    assert invitations[network.clara].agency == network.jugendamt
    assert list(invitations[network.ben].consents.all()) == [coordination]
    assert invitations[network.ben].access_until == coordination.valid_until
    assert "view_conference" in get_perms(network.ben, conference)


def test_snapshot_holds_exactly_the_shared_categories(conference: Conference) -> None:
    snapshot = json.loads(conference.decrypt_field("snapshot"))
    assert snapshot["identity"]["members"][0]["name"].startswith("Ayşe")
    assert snapshot["notes"] == {"employment": "Sucht Teilzeit, 20 Stunden, ab März."}
    assert conference.categories == sorted([DataCategory.EMPLOYMENT, DataCategory.IDENTITY])


def test_records_audit_event_without_content(network: Network, conference: Conference) -> None:
    event = AuditEvent.objects.get(action="conference.convened")
    assert event.actor_id == network.anna.pk
    assert event.family_id == str(conference.family_id)
    assert event.details["agencies"] == 2
    assert event.details["invitees"] == 2
    assert event.details["shares_identity"] is True
    assert "shares_health" not in event.details
    shared = AuditEvent.objects.filter(action="conference.shared")
    assert sorted(e.details["to_agency"] for e in shared) == sorted(
        [network.jobcenter.pk, network.jugendamt.pk]
    )
    text = json.dumps(event.details) + event.purpose
    for secret in ("Familienbüro", "Kita", "Teilzeit", "Yılmaz", "Horster"):
        assert secret not in text


def test_notifies_the_invitees_with_the_reference_only(
    network: Network, conference: Conference
) -> None:
    notes = Notification.objects.filter(kind="conference.invited")
    assert {n.user for n in notes} == {network.ben, network.clara}
    note = notes.first()
    assert note is not None
    assert note.family_ref == conference.family.reference
    assert note.url == reverse("conference_detail", args=[conference.pk])


def test_refuses_an_agency_the_consent_does_not_cover(
    network: Network, family: Family, coordination: Consent
) -> None:
    with pytest.raises(ActionError, match="Amt für Migration"):
        actions.convene_conference(
            family, data=conference_data([network.ben, network.dirk]), by=network.anna
        )
    assert not Conference.objects.exists()
    assert not Notification.objects.filter(kind="conference.invited").exists()


def test_refuses_a_category_the_consent_does_not_cover(
    network: Network, family: Family, coordination: Consent
) -> None:
    data = conference_data([network.ben], categories=[DataCategory.HEALTH])
    with pytest.raises(ActionError, match="Keine gültige Einwilligung"):
        actions.convene_conference(family, data=data, by=network.anna)
    assert not Conference.objects.exists()


def test_a_consent_for_referral_only_does_not_cover_a_conference(
    network: Network, family: Family, consent: Consent
) -> None:
    # tests/conftest.py's consent: the Jobcenter, for referral and application support.
    with pytest.raises(ActionError):
        actions.convene_conference(family, data=conference_data([network.ben]), by=network.anna)
    assert not Conference.objects.exists()


def test_refuses_while_processing_is_restricted(
    network: Network, family: Family, coordination: Consent
) -> None:
    Family.objects.filter(pk=family.pk).update(restricted_at=timezone.now())
    with pytest.raises(ActionError, match=r"Art\. 18"):
        actions.convene_conference(family, data=conference_data([network.ben]), by=network.anna)
    assert not Conference.objects.exists()


def test_only_coaches_and_leads_of_the_project_convene(
    network: Network, family: Family, coordination: Consent
) -> None:
    for outsider in (network.ben, network.clara, network.dora, network.dirk):
        with pytest.raises(NotAllowed):
            actions.convene_conference(family, data=conference_data([network.ben]), by=outsider)
    assert not Conference.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"starts_at": timezone.now() - timedelta(hours=1)}, "Vergangenheit"),
        ({"starts_at": timezone.now() + timedelta(days=400)}, "mehr als ein Jahr"),
        ({"place": "", "video_link": ""}, "Ort oder einen Video-Link"),
        ({"video_link": "http://example.org/raum"}, "https://"),
        ({"duration_minutes": 5}, "Dauer"),
        ({"categories": []}, "Datenkategorie"),
        ({"invitees": []}, "mindestens eine Person"),
    ],
)
def test_bad_details_are_refused_and_change_nothing(
    network: Network, family: Family, coordination: Consent, changes: dict, message: str
) -> None:
    data = conference_data(changes.pop("invitees", [network.ben]), **changes)
    with pytest.raises(ActionError, match=message):
        actions.convene_conference(family, data=data, by=network.anna)
    assert not Conference.objects.exists()
    assert not AuditEvent.objects.filter(action="conference.convened").exists()


def test_a_member_of_the_project_itself_is_not_invited(
    network: Network, family: Family, coordination: Consent
) -> None:
    with pytest.raises(ActionError, match="Anna Albers"):
        actions.convene_conference(family, data=conference_data([network.anna]), by=network.anna)


def test_cancel_tells_the_invitees_and_keeps_it_visible_as_cancelled(
    network: Network, conference: Conference
) -> None:
    with pytest.raises(NotAllowed):
        actions.cancel_conference(conference, by=network.ben)
    actions.cancel_conference(conference, by=network.anna)
    conference.refresh_from_db()
    assert conference.state == Conference.State.CANCELLED
    told = Notification.objects.filter(kind="conference.cancelled")
    assert {n.user for n in told} == {network.ben, network.clara}
    assert AuditEvent.objects.filter(action="conference.cancelled").count() == 1
    with pytest.raises(ActionError):
        actions.cancel_conference(conference, by=network.anna)


def test_a_second_consent_of_another_family_covers_nothing(
    network: Network, family: Family, coordination: Consent
) -> None:
    other = core.register_family(
        owner=network.project,
        members=[
            core.MemberData("adult", "Olga", "Other", timezone.localdate().replace(year=1980))
        ],
        address="Weg 1",
        phone="",
        notes="",
        by=network.anna,
    )
    with pytest.raises(ActionError):
        actions.convene_conference(other, data=conference_data([network.ben]), by=network.anna)
    assert not Conference.objects.exists()


def test_the_family_page_lists_its_conferences_and_consultations(
    network: Network, family: Family, conference: Conference
) -> None:
    """The section a family page shows (conferences/sections.py): newest first, a cancelled
    one marked, the network's anonymous consultations by their alias."""
    later = actions.convene_conference(
        family,
        data=conference_data([network.ben], starts_at=timezone.now() + timedelta(days=14)),
        by=network.anna,
    )
    actions.cancel_conference(later, by=network.anna)
    asked = actions.ask_network(
        family, question="Wer kennt ein Angebot?", agencies=[network.jugendamt], by=network.anna
    )
    html = verified_client(network.anna).get(reverse("family_detail", args=[family.pk])).text
    section = html[html.index('id="conferences-heading"') :].split("</section>")[0]
    assert section.index(str(later.pk)) < section.index(str(conference.pk))
    assert section.count('<span class="badge">abgesagt</span>') == 1
    assert f'{reverse("consultation_detail", args=[asked.pk])}">{asked.alias}</a>' in section
    assert timezone.localtime(conference.starts_at).strftime("%H:%M Uhr") in section
