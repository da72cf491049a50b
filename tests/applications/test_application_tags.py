"""Application tags ("auf kurzem Dienstweg"), end to end through the pages: Anna tags a
benefit application of the Yılmaz family and prints the stamp; Ben, a caseworker at the
Jobcenter that processes it, records its progress, but only while Ayşe's consent covers
his office for application support and the kind's data category; Anna's list orders her
project's tags and shows the days to a decision. Opening a tag by its code, wrong codes and
the throttle: tests/applications/test_tag_lookup.py.

Who may see what here: Anna (coach at the project) sees all of her project's tags and
their stamps; Ben sees a Jobcenter tag through the consent fixture (Jobcenter, household,
application support); Clara (Jugendamt) is not named in that consent; Dirk is the outsider.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from itertools import count

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from applications import actions
from applications.models import ApplicationTag, TagStatusChange
from dienstweg import actions as core
from dienstweg.actions import BACKUP_CODE_ALPHABET, ActionError
from dienstweg.models import Agency, Consent, Contact, Family, Membership, Notification, User
from tests.applications.helpers import (
    APPLICATION_SUPPORT,
    CODE,
    FILE_NUMBER,
    NAMES,
    REFUSAL,
    days_ago,
    detail_url,
    events,
    status_url,
    tag,
    today,
    unknown_code,
)
from tests.applications.test_stamp import dark_modules, qr_modules
from tests.conftest import Network, consent_data, make_staff, prepared_while, verified_client

pytestmark = pytest.mark.usefixtures("empty_cache", "project_phone")


# Tagging an application


def post_tag(client: Client, family: Family, **changes: object):
    data: dict[str, object] = {
        "kind": ApplicationTag.Kind.CITIZENS_BENEFIT,
        "submitted_on": days_ago(3).isoformat(),
        "file_number": FILE_NUMBER,
    }
    data.update(changes)
    return client.post(reverse("tag_new", args=[family.pk]), data)


def test_coach_tags_an_application_and_becomes_its_contact(
    network: Network, family: Family
) -> None:
    client = verified_client(network.anna)
    response = post_tag(client, family, processing_agency=network.jobcenter.pk)

    tag_ = ApplicationTag.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(tag_.code)
    assert (tag_.family, tag_.project, tag_.processing_agency) == (
        family,
        network.project,
        network.jobcenter,
    )
    assert tag_.kind == ApplicationTag.Kind.CITIZENS_BENEFIT
    assert tag_.submitted_on == days_ago(3)
    assert tag_.decrypt_field("file_number") == FILE_NUMBER
    assert tag_.coach == network.anna
    assert tag_.state == ApplicationTag.State.SUBMITTED
    assert [c.state for c in tag_.changes.all()] == [ApplicationTag.State.SUBMITTED]
    [event] = events("application_tag.created", network.anna)
    assert event.family_id == str(family.pk)
    assert event.target_id == str(tag_.pk)
    assert event.agency_id == network.project.pk
    assert event.details == {"kind": "buergergeld", "processing_agency": network.jobcenter.pk}


def test_code_is_three_groups_of_four_from_the_31_letter_alphabet_and_differs_between_tags(
    network: Network, family: Family
) -> None:
    assert len(BACKUP_CODE_ALPHABET) == 31
    client = verified_client(network.anna)
    for kind in ["buergergeld", "kinderzuschlag", "wohngeld", "but"]:
        assert post_tag(client, family, kind=kind, processing_agency=network.jobcenter.pk)[
            "Location"
        ]
    codes = list(ApplicationTag.objects.values_list("code", flat=True))
    assert len(codes) == 4
    assert all(CODE.fullmatch(code) for code in codes), codes
    assert len(set(codes)) == 4


def test_a_code_that_is_already_taken_is_drawn_again(
    network: Network, family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tag(network, family)
    fresh = unknown_code()
    drawn = iter([first.code, fresh])
    monkeypatch.setattr(actions, "new_tag_code", lambda: next(drawn))

    second = tag(network, family)

    assert second.code == fresh != first.code
    assert ApplicationTag.objects.count() == 2
    assert len(events("application_tag.created")) == 2


def test_submission_date_in_the_future_is_refused(network: Network, family: Family) -> None:
    client = verified_client(network.anna)
    tomorrow = today() + timedelta(days=1)
    response = post_tag(
        client, family, processing_agency=network.jobcenter.pk, submitted_on=tomorrow.isoformat()
    )
    assert response.status_code == 200
    assert "Das Einreichungsdatum liegt in der Zukunft." in response.content.decode()
    assert not ApplicationTag.objects.exists()
    assert events("application_tag.created") == []


@pytest.fixture
def other_project(network: Network) -> Agency:
    return core.create_agency(
        name="Stadtteilmütter Brauck", kind=Agency.Kind.PROJECT, rechtskreis="other"
    )


def test_projects_are_not_offered_as_processing_agency(
    network: Network, family: Family, other_project: Agency
) -> None:
    client = verified_client(network.anna)
    page = client.get(reverse("tag_new", args=[family.pk])).content.decode()
    offered = set(re.findall(r'<option value="(\d+)"', page))
    assert str(network.jobcenter.pk) in offered
    assert str(network.jugendamt.pk) in offered
    assert str(network.project.pk) not in offered
    assert str(other_project.pk) not in offered

    for agency in (other_project, network.project):
        response = post_tag(client, family, processing_agency=agency.pk)
        assert response.status_code == 200
    assert not ApplicationTag.objects.exists()


@pytest.mark.parametrize("which", ["other project", "own project", "partner"])
def test_action_refuses_a_processing_agency_that_is_no_authority(
    network: Network, family: Family, other_project: Agency, which: str
) -> None:
    agency = {"other project": other_project, "own project": network.project}.get(
        which, network.migration
    )
    with pytest.raises(ActionError):
        tag(network, family, office=agency)
    assert not ApplicationTag.objects.exists()


def test_file_number_is_encrypted_in_the_row(network: Network, family: Family) -> None:
    client = verified_client(network.anna)
    post_tag(client, family, processing_agency=network.jobcenter.pk)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApplicationTag._meta.db_table}")  # noqa: S608
        rows = cursor.fetchall()
    assert len(rows) == 1
    for cell in rows[0]:
        raw = (
            bytes(cell) if isinstance(cell, memoryview | bytes | bytearray) else str(cell).encode()
        )
        assert b"0004711" not in raw
    assert ApplicationTag.objects.get().decrypt_field("file_number") == FILE_NUMBER


# The stamp


def test_stamp_is_a_pdf_download_for_the_project_and_is_audited(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    response = verified_client(network.anna).get(reverse("tag_stamp", args=[jobcenter_tag.code]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.content.startswith(b"%PDF-")
    [event] = events("application_tag.stamp_printed", network.anna)
    assert event.family_id == str(family.pk)
    assert event.target_id == str(jobcenter_tag.pk)


def test_stamp_carries_the_submission_date_the_coachs_direct_number_and_the_sites_qr(
    network: Network, family: Family, jobcenter_tag: ApplicationTag, settings
) -> None:
    settings.DIENSTWEG_BASE_URL = "https://dienstweg.kreis-re.example"
    Contact.objects.create(
        agency=network.project, name="Anna Albers", email="ANNA@example.org",
        direct_phone="02043 987650-17", checked_on=today(),
    )  # fmt: skip

    pdf = verified_client(network.anna).get(reverse("tag_stamp", args=[jobcenter_tag.code]))

    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert f"Eingereicht am {jobcenter_tag.submitted_on:%d.%m.%Y}" in text
    assert "Durchwahl 02043 987650-17" in text
    assert "dienstweg.kreis-re.example" in text
    expected = f"https://dienstweg.kreis-re.example/antraege/{jobcenter_tag.code}/"
    assert qr_modules(render_again(pdf.content)) == dark_modules(expected)


def render_again(pdf: bytes) -> bytes:
    """The page's content stream, uncompressed, to find the QR code's rectangles in."""
    return PdfReader(io.BytesIO(pdf)).pages[0].get_contents().get_data()


def test_tag_page_shows_the_coachs_direct_number_from_the_directory(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    Contact.objects.create(
        agency=network.project, name="Anna Albers", email="anna@example.org",
        direct_phone="02043 987650-17", checked_on=today(),
    )  # fmt: skip
    html = verified_client(network.ben).get(detail_url(jobcenter_tag.code)).content.decode()
    assert 'href="tel:02043 987650-17"' in html


def test_processing_office_gets_no_stamp(network: Network, jobcenter_tag: ApplicationTag) -> None:
    response = verified_client(network.ben).get(reverse("tag_stamp", args=[jobcenter_tag.code]))
    assert response.status_code == 404
    assert b"%PDF" not in response.content
    assert events("application_tag.stamp_printed") == []


# Status changes by the processing office


def post_status(client: Client, tag_: ApplicationTag, **data: object):
    return client.post(status_url(tag_.code), data, follow=True)


def states(tag_: ApplicationTag) -> list[str]:
    return list(TagStatusChange.objects.filter(tag=tag_).values_list("state", flat=True))


def test_clerk_records_receipt_and_the_coach_is_notified_without_names(
    network: Network,
    family: Family,
    jobcenter_tag: ApplicationTag,
    send_outbox,
) -> None:
    client = verified_client(network.ben)
    response = client.post(status_url(jobcenter_tag.code), {"state": "received"})
    assert response.status_code == 302

    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.RECEIVED
    assert states(jobcenter_tag) == ["submitted", "received"]
    assert TagStatusChange.objects.get(state="received").by == network.ben
    [notification] = Notification.objects.all()
    assert notification.user == network.anna
    assert notification.kind == "application_tag.status_changed"
    assert notification.family_ref == family.reference
    assert notification.url == detail_url(jobcenter_tag.code)
    [email] = send_outbox()
    assert email.to == ["anna@example.org"]
    assert family.reference in email.body
    text = email.subject + email.body
    for name in [*NAMES, FILE_NUMBER]:
        assert name not in text
    [event] = events("application_tag.status_changed", network.ben)
    assert event.family_id == str(family.pk)
    assert event.details == {"state": "received"}
    assert event.purpose == APPLICATION_SUPPORT
    assert event.agency_id == network.jobcenter.pk

    page = verified_client(network.anna).get(detail_url(jobcenter_tag.code)).content.decode()
    assert "eingegangen" in page


def test_requesting_documents_needs_a_note_of_what_is_missing(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    clerk = verified_client(network.ben)
    refused = post_status(clerk, jobcenter_tag, state="documents_requested", note="  ")
    assert "Bitte angeben, welche Unterlagen fehlen." in refused.content.decode()
    assert states(jobcenter_tag) == ["submitted"]
    assert not Notification.objects.exists()

    post_status(
        clerk, jobcenter_tag, state="documents_requested", note="Kontoauszüge der letzten 3 Monate"
    )

    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.DOCUMENTS_REQUESTED
    assert states(jobcenter_tag) == ["submitted", "documents_requested"]
    assert Notification.objects.filter(user=network.anna).count() == 1
    page = verified_client(network.anna).get(detail_url(jobcenter_tag.code)).content.decode()
    assert "Unterlagen nachgefordert" in page
    assert "Kontoauszüge der letzten 3 Monate" in page


BETWEEN = "Das Entscheidungsdatum muss zwischen Einreichung und heute liegen."


@pytest.mark.parametrize(
    ("decided_on", "message"),
    [
        pytest.param(None, "Bitte das Datum der Entscheidung angeben.", id="no-date"),
        pytest.param(15, BETWEEN, id="before-submission"),
        pytest.param(-1, BETWEEN, id="in-the-future"),
    ],
)
def test_decision_needs_a_date_between_submission_and_today(
    network: Network, jobcenter_tag: ApplicationTag, decided_on: int | None, message: str
) -> None:
    assert jobcenter_tag.submitted_on == days_ago(14)
    data = {"state": "decided"}
    if decided_on is not None:
        data["decided_on"] = days_ago(decided_on).isoformat()
    response = post_status(verified_client(network.ben), jobcenter_tag, **data)
    assert response.status_code == 200
    assert message in response.content.decode()
    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.SUBMITTED
    assert jobcenter_tag.decided_on is None
    assert states(jobcenter_tag) == ["submitted"]
    assert events("application_tag.status_changed") == []


def test_decision_records_the_date_and_nothing_changes_afterwards(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    clerk = verified_client(network.ben)
    post_status(clerk, jobcenter_tag, state="decided", decided_on=days_ago(4).isoformat())
    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.DECIDED
    assert jobcenter_tag.decided_on == days_ago(4)
    assert jobcenter_tag.days_to_decision == 10

    for data in (
        {"state": "received"},
        {"state": "documents_requested", "note": "Mietvertrag"},
        {"state": "decided", "decided_on": days_ago(1).isoformat()},
    ):
        response = post_status(clerk, jobcenter_tag, **data)
        assert "Nicht möglich" in response.content.decode()
    jobcenter_tag.refresh_from_db()
    assert (jobcenter_tag.state, jobcenter_tag.decided_on) == ("decided", days_ago(4))
    assert states(jobcenter_tag) == ["submitted", "decided"]
    assert len(events("application_tag.status_changed")) == 1
    assert f'action="{status_url(jobcenter_tag.code)}"' not in (
        clerk.get(detail_url(jobcenter_tag.code)).content.decode()
    )
    coach_page = verified_client(network.anna).get(detail_url(jobcenter_tag.code))
    assert "entschieden" in coach_page.content.decode()


def test_coach_cannot_record_the_status(network: Network, jobcenter_tag: ApplicationTag) -> None:
    response = post_status(verified_client(network.anna), jobcenter_tag, state="received")
    assert "Den Stand trägt die bearbeitende Stelle ein." in response.content.decode()
    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.SUBMITTED
    assert states(jobcenter_tag) == ["submitted"]
    assert events("application_tag.status_changed") == []
    with pytest.raises(ActionError):
        actions.record_tag_status(jobcenter_tag, state="received", by=network.anna)


def test_clerk_can_no_longer_record_status_after_revocation(
    network: Network, consent: Consent, jobcenter_tag: ApplicationTag
) -> None:
    clerk = verified_client(network.ben)
    post_status(clerk, jobcenter_tag, state="received")
    core.revoke_consent(consent, note="Widerruf", by=network.anna)

    response = clerk.post(
        status_url(jobcenter_tag.code), {"state": "decided", "decided_on": today().isoformat()}
    )

    assert response.status_code == 403
    assert REFUSAL in response.content.decode()
    jobcenter_tag.refresh_from_db()
    assert jobcenter_tag.state == ApplicationTag.State.RECEIVED
    assert states(jobcenter_tag) == ["submitted", "received"]
    with pytest.raises(ActionError):
        actions.record_tag_status(
            jobcenter_tag, state="decided", decided_on=today(), by=network.ben
        )


# The coach's list


def decide(tag_: ApplicationTag, by: User, *, after_days: int) -> None:
    actions.record_tag_status(
        tag_,
        state="decided",
        decided_on=tag_.submitted_on + timedelta(days=after_days),
        by=by,
    )


@pytest.fixture
def elsewhere(network: Network) -> tuple[Family, User]:
    """Another project with its own coach and family (consent for the Jobcenter)."""
    project = core.create_agency(
        name="Stadtteilmütter Brauck", kind=Agency.Kind.PROJECT, rechtskreis="other"
    )
    paula = make_staff("paula@example.org", "Paula Peters", project, Membership.Role.COACH)
    other = core.register_family(
        owner=project,
        members=[core.MemberData("adult", "Ayşe", "Kaya", date(1979, 3, 3))],
        address="Brauckstraße 1, 45968 Gladbeck",
        phone="02043 55555",
        notes="",
        by=paula,
    )
    core.grant_consent(
        other,
        data=consent_data(network, other),
        by=paula,
    )
    return other, paula


def listed_codes(client: Client) -> list[str]:
    page = client.get(reverse("tag_list"))
    assert page.status_code == 200
    # Each code shows as a link's address and its text: keep the first of each.
    return list(dict.fromkeys(CODE.findall(page.content.decode())))


def test_list_shows_requests_for_documents_first_then_open_then_decided(
    network: Network, family: Family, consent: Consent
) -> None:
    # Submission dates run against the expected order: sorting by date alone fails.
    decided = tag(network, family, submitted_on=days_ago(3))
    decide(decided, network.ben, after_days=1)
    received = tag(network, family, submitted_on=days_ago(10))
    actions.record_tag_status(received, state="received", by=network.ben)
    submitted = tag(network, family, submitted_on=days_ago(20))
    documents = tag(network, family, submitted_on=days_ago(40))
    actions.record_tag_status(
        documents, state="documents_requested", note="Mietvertrag", by=network.ben
    )

    assert listed_codes(verified_client(network.anna)) == [
        documents.code,
        received.code,
        submitted.code,
        decided.code,
    ]


def test_list_shows_only_the_own_projects_tags(
    network: Network, family: Family, consent: Consent, elsewhere: tuple[Family, User]
) -> None:
    other_family, paula = elsewhere
    ours = tag(network, family)
    theirs = tag(network, other_family, by=paula)

    assert listed_codes(verified_client(network.anna)) == [ours.code]
    assert listed_codes(verified_client(paula)) == [theirs.code]
    assert listed_codes(verified_client(network.ben)) == []


def durations(client: Client) -> list[tuple[str, str, str]]:
    page = client.get(reverse("tag_list")).content.decode()
    section = page.split('id="durations-heading"', 1)[1]
    return re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>([^<]+)</td></tr>", section)


def test_list_shows_average_days_to_decision_per_kind(
    network: Network, family: Family, consent: Consent, elsewhere: tuple[Family, User]
) -> None:
    assert durations(verified_client(network.anna)) == []
    serial = count(20)
    for kind, days in [
        (ApplicationTag.Kind.CITIZENS_BENEFIT, 10),
        (ApplicationTag.Kind.CITIZENS_BENEFIT, 21),
        (ApplicationTag.Kind.CHILD_SUPPLEMENT, 7),
    ]:
        decide(
            tag(
                network,
                family,
                kind=kind,
                submitted_on=days_ago(next(serial) + days),
            ),
            network.ben,
            after_days=days,
        )
    # Undecided, and another project's decision: neither counts.
    tag(network, family, submitted_on=days_ago(90))
    other_family, paula = elsewhere
    decide(
        tag(network, other_family, by=paula, submitted_on=days_ago(120)),
        network.ben,
        after_days=100,
    )

    assert sorted(durations(verified_client(network.anna))) == [
        ("Bürgergeld", "2", "15,5"),
        ("Kinderzuschlag", "1", "7,0"),
    ]


def test_a_status_note_stands_apart_from_who_entered_it(
    network: Network, jobcenter_tag: ApplicationTag
) -> None:
    actions.record_tag_status(
        jobcenter_tag,
        state=ApplicationTag.State.DOCUMENTS_REQUESTED,
        note="Kontoauszüge nachreichen.",
        decided_on=None,
        by=network.ben,
    )
    html = verified_client(network.anna).get(detail_url(jobcenter_tag.code)).content.decode()
    assert "nachreichen., Ben Becker" not in html
    assert "– Ben Becker" in html
    assert '<p class="notes">Kontoauszüge nachreichen.</p>' in html


@pytest.mark.postgres
def test_the_tag_page_plans_its_queries_once(network: Network, family: Family) -> None:
    """A page that reads a few rows by their ids (dienstweg.compiled.planned_once)."""
    tag_ = tag(network, family)
    prepared = prepared_while(verified_client(network.anna), detail_url(tag_.code))
    assert any('FROM "referrals_tagstatuschange"' in statement for statement in prepared)
