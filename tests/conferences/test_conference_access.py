"""Every conference URL, walked by the people of the project, the invited agencies, a
colleague of an invitee who was not invited, the DPO, an operator and the outsider: each
gets exactly what the rules allow, and every refusal is audited under the family. Then the
consent ends (revoked, expired) and the family's processing is restricted."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import get_perms

from audit.models import AuditEvent
from conferences import actions
from conferences.models import Conference, Invitation
from dienstweg import actions as core
from dienstweg.models import Consent, Family, Membership, Notification, User
from tests.builders import conference_data
from tests.conftest import Network, make_staff, prepared_while, verified_client


@pytest.fixture
def people(network: Network, jonas: User) -> dict[str, User]:
    return {
        "anna (coach, project)": network.anna,
        "paul (caseworker, project)": make_staff(
            "paul@example.org", "Paul Peters", network.project, Membership.Role.CASEWORKER
        ),
        "ben (invited, Jobcenter)": network.ben,
        "clara (invited, Jugendamt)": network.clara,
        "jonas (Jobcenter, not invited)": jonas,
        "dora (DPO, Jugendamt)": network.dora,
        "otto (admin, project)": make_staff(
            "otto@example.org", "Otto Olsen", network.project, Membership.Role.ADMIN
        ),
        "dirk (outsider)": network.dirk,
    }


SEES = {
    "anna (coach, project)",
    "paul (caseworker, project)",
    "ben (invited, Jobcenter)",
    "clara (invited, Jugendamt)",
}


def _urls(conference: Conference) -> list[str]:
    return [
        reverse("conference_detail", args=[conference.pk]),
        reverse("conference_calendar", args=[conference.pk]),
    ]


def test_each_person_sees_exactly_what_the_rules_allow(
    people: dict[str, User], conference: Conference
) -> None:
    for name, user in people.items():
        client = verified_client(user)
        for url in _urls(conference):
            response = client.get(url)
            expected = 200 if name in SEES else 404
            assert response.status_code == expected, (name, url)
        listed = conference.family.reference in client.get(reverse("conference_list")).text
        assert listed == (name in SEES), name
    refused = AuditEvent.objects.filter(action="conference.access_denied")
    assert refused.count() == 2 * (len(people) - len(SEES))
    assert {event.family_id for event in refused} == {str(conference.family_id)}


def test_the_page_shows_the_snapshot_and_records_the_view(
    network: Network, conference: Conference
) -> None:
    page = verified_client(network.ben).get(reverse("conference_detail", args=[conference.pk]))
    assert "Ayşe Yılmaz" in page.text
    assert "Sucht Teilzeit" in page.text
    assert "Familienbüro Gladbeck" in page.text
    assert "Clara Czerny (Stadt Gladbeck, Amt für Jugend und Familie)" in page.text
    # The record's notes are not shared: only the snapshot.
    assert "Mutter sucht Teilzeitstelle" not in page.text
    viewed = AuditEvent.objects.get(action="conference.viewed")
    assert viewed.actor_id == network.ben.pk
    assert viewed.details == {"side": "invitee"}


@pytest.mark.postgres
def test_the_page_plans_its_rule_once(network: Network, conference: Conference) -> None:
    """Its rule and joins took PostgreSQL longer to plan than to run: they are prepared
    statements of the connection (bench/step11.py)."""
    client = verified_client(network.ben)
    prepared = prepared_while(client, reverse("conference_detail", args=[conference.pk]))
    assert any('FROM "conferences_conference"' in statement for statement in prepared)
    assert any('FROM "conferences_agreement"' in statement for statement in prepared)
    assert prepared_while(client, reverse("conference_detail", args=[conference.pk])) == []


def test_unknown_and_malformed_ids_get_404(network: Network) -> None:
    client = verified_client(network.anna)
    assert client.get("/konferenzen/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/konferenzen/kein-id/").status_code == 404


def test_calendar_file_names_reference_time_and_place_only(
    network: Network, conference: Conference
) -> None:
    response = verified_client(network.clara).get(
        reverse("conference_calendar", args=[conference.pk])
    )
    assert response["Content-Type"].startswith("text/calendar")
    text = response.content.decode()
    assert text.startswith("BEGIN:VCALENDAR\r\n")
    unfolded = text.replace("\r\n ", "")
    assert f"SUMMARY:Familienkonferenz {conference.family.reference}\r\n" in unfolded
    assert "LOCATION:Familienbüro Gladbeck\\, Raum 2\r\n" in unfolded
    start = conference.starts_at.astimezone(UTC)
    assert f"DTSTART:{start:%Y%m%dT%H%M%SZ}" in unfolded
    for secret in ("Yılmaz", "Ayşe", "Horster", "Kita", "Teilzeit", "Arbeitssuche"):
        assert secret not in unfolded
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert AuditEvent.objects.filter(
        action="conference.calendar_downloaded", actor_id=network.clara.pk
    ).exists()


def test_revocation_ends_the_invitees_access_at_once(
    network: Network, conference: Conference, coordination: Consent, monkeypatch
) -> None:
    told: list[list[int]] = []
    monkeypatch.setattr(
        "conferences.actions.convening.events.access_revoked", lambda ids: told.append(list(ids))
    )
    ben = verified_client(network.ben)
    url = reverse("conference_detail", args=[conference.pk])
    assert ben.get(url).status_code == 200
    core.revoke_consent(coordination, note="Widerruf am Telefon", by=network.anna)
    assert ben.get(url).status_code == 404
    assert verified_client(network.clara).get(url).status_code == 404
    assert verified_client(network.anna).get(url).status_code == 200
    assert not get_perms(network.ben, conference)
    assert {pk for ids in told for pk in ids} >= {network.ben.pk, network.clara.pk}
    assert Invitation.objects.filter(access_ended_at__isnull=True).count() == 0
    withdrawn = AuditEvent.objects.filter(action="conference.access_withdrawn")
    assert withdrawn.count() == 2
    assert Notification.objects.filter(kind="conference.access_ended", user=network.ben).exists()
    # The project sees who lost access.
    page = verified_client(network.anna).get(url).text
    assert "Zugriff beendet" in page


def test_revocation_page_names_the_conference_first(
    network: Network, conference: Conference, coordination: Consent
) -> None:
    page = verified_client(network.anna).get(
        reverse("consent_revoke", args=[conference.family_id, coordination.pk])
    )
    assert f"Familienkonferenz {conference.family.reference}" in page.text


def test_expiry_ends_access_the_same_day(network: Network, conference: Conference) -> None:
    Invitation.objects.filter(user=network.ben).update(
        access_until=timezone.localdate() - timedelta(days=1)
    )
    url = reverse("conference_detail", args=[conference.pk])
    assert verified_client(network.ben).get(url).status_code == 404
    assert verified_client(network.clara).get(url).status_code == 200


def test_restriction_hides_it_from_the_invitees_not_the_project(
    network: Network, conference: Conference
) -> None:
    Family.objects.filter(pk=conference.family_id).update(restricted_at=timezone.now())
    url = reverse("conference_detail", args=[conference.pk])
    assert verified_client(network.ben).get(url).status_code == 404
    assert verified_client(network.anna).get(url).status_code == 200


def test_losing_the_role_ends_access(network: Network, conference: Conference) -> None:
    Membership.objects.filter(user=network.ben).delete()
    url = reverse("conference_detail", args=[conference.pk])
    assert verified_client(network.ben).get(url).status_code == 404


def test_page_query_count_is_constant(
    network: Network, family: Family, coordination: Consent
) -> None:
    def queries_for(invitees: list[User]) -> int:
        conference = actions.convene_conference(
            family, data=conference_data(invitees), by=network.anna
        )
        client = verified_client(network.anna)
        client.get("/")  # the session's first request does its own bookkeeping
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("conference_detail", args=[conference.pk])).status_code == 200
        return len(captured)

    few = queries_for([network.ben])
    extra = [
        make_staff(
            f"jc{n}@example.org", f"Kollegin {n}", network.jobcenter, Membership.Role.CASEWORKER
        )
        for n in range(5)
    ]
    many = queries_for([network.ben, network.clara, *extra])
    assert many == few


def test_cancel_asks_first_and_only_the_project_may(
    network: Network, conference: Conference
) -> None:
    url = reverse("conference_cancel", args=[conference.pk])
    anna = verified_client(network.anna)
    asked = anna.get(url)
    assert "absagen?" in asked.text and "Ben Becker" in asked.text
    conference.refresh_from_db()
    assert conference.state == Conference.State.PLANNED
    ben = verified_client(network.ben)
    assert ben.post(url).status_code == 302
    conference.refresh_from_db()
    assert conference.state == Conference.State.PLANNED
    assert anna.post(url).status_code == 302
    conference.refresh_from_db()
    assert conference.state == Conference.State.CANCELLED
    assert (
        "STATUS:CANCELLED"
        in ben.get(reverse("conference_calendar", args=[conference.pk])).content.decode()
    )


def test_convene_form_end_to_end(
    network: Network, family: Family, coordination: Consent, jonas: User
) -> None:
    anna: Client = verified_client(network.anna)
    url = reverse("conference_new", args=[family.pk])
    page = anna.get(url)
    assert "Ben Becker" in page.text and "Jonas Jung" in page.text
    assert "Dirk Dahl" not in page.text  # his agency is not covered
    day = timezone.localdate() + timedelta(days=3)
    form = {
        "date": day.isoformat(),
        "time": "10:00",
        "duration_minutes": "60",
        "place": "",
        "video_link": "",
        "agenda": "Kita",
        "categories": ["identity"],
        "invitees": [str(network.ben.pk)],
    }
    refused = anna.post(url, form)
    assert refused.status_code == 200
    assert "Ort oder einen Video-Link" in refused.text
    assert not Conference.objects.exists()
    form["place"] = "Familienbüro"
    done = anna.post(url, form)
    conference = Conference.objects.get()
    assert done.status_code == 302
    assert done["Location"] == reverse("conference_detail", args=[conference.pk])
    assert timezone.localtime(conference.starts_at).hour == 10
    assert [i.user for i in conference.invitations.all()] == [network.ben]


def test_a_caseworker_of_the_project_cannot_open_the_form(
    people: dict[str, User], family: Family, coordination: Consent
) -> None:
    paul = verified_client(people["paul (caseworker, project)"])
    response = paul.get(reverse("conference_new", args=[family.pk]))
    assert response.status_code == 302
    assert (
        verified_client(people["dirk (outsider)"])
        .get(reverse("conference_new", args=[family.pk]))
        .status_code
        == 404
    )


def test_a_reader_of_english_gets_the_pages_in_english(
    network: Network, conference: Conference
) -> None:
    client = verified_client(network.anna)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    listing = client.get(reverse("conference_list")).content.decode()
    # The tab's title is the page's name alone, not markup or a list of consultations.
    assert "<title>Family conferences – Dienstweg</title>" in listing
    assert "Upcoming family conferences" in listing
    page = client.get(reverse("conference_detail", args=[conference.pk])).content.decode()
    assert f"Family conference {conference.family.reference}" in page
    assert "Record an agreement" in page
    assert "<dt>Place</dt>" in page  # where they meet; elsewhere "Ort" is an agency's town
    when = timezone.localtime(conference.starts_at)
    assert f"{when:%A}, {when:%B} {when.day}, {when.year}, {when:%H:%M}–" in page
    assert " Uhr" not in listing and " Uhr" not in page
