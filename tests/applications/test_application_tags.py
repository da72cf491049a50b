"""Application tags ("auf kurzem Dienstweg"), end to end through the pages: Anna tags a
benefit application of the Yılmaz family and prints the stamp; Ben, a caseworker at the
Jobcenter that processes it, opens it by the code on the paper and records its progress,
but only while Ayşe's consent covers his office for application support and the kind's
data category; everyone else sees a 404 that does not tell whether the code exists, and
wrong codes are throttled per account.

Who may see what here: Anna (coach at the project) sees all of her project's tags and
their stamps; Ben sees a Jobcenter tag through the consent fixture (Jobcenter, household,
application support); Clara (Jugendamt) is not named in that consent; Dirk is the outsider.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from itertools import count

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from applications import actions
from applications.models import ApplicationTag, TagStatusChange
from audit.models import AuditEvent
from dienstweg import actions as core
from dienstweg.actions import BACKUP_CODE_ALPHABET, ActionError
from dienstweg.models import Agency, Consent, Family, Membership, Notification, User
from tests.conftest import Network, consent_data, make_staff, verified_client

FILE_NUMBER = "BG-31201-0004711"
PROJECT_PHONE = "02043 987650"
CODE = re.compile(rf"[{BACKUP_CODE_ALPHABET}]{{4}}(?:-[{BACKUP_CODE_ALPHABET}]{{4}}){{2}}")
REFUSAL = "Die Einwilligung der Familie erlaubt Ihrer Stelle keinen Zugriff"
APPLICATION_SUPPORT = "Unterstützung bei Anträgen"
NAMES = ["Anna", "Albers", "Ben", "Becker", "Ayşe", "Yılmaz", "Yilmaz", "Leyla", "Emre"]


@pytest.fixture(autouse=True)
def empty_cache():
    """The look-up throttle lives in the cache: every test starts with no failures."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def project_phone(network: Network) -> None:
    network.project.public_phone = PROJECT_PHONE
    network.project.save(update_fields=["public_phone"])


def today() -> date:
    return timezone.localdate()


def days_ago(days: int) -> date:
    return today() - timedelta(days=days)


def tag(
    family: Family,
    by: User,
    *,
    kind: str = ApplicationTag.Kind.CITIZENS_BENEFIT,
    agency: Agency,
    submitted_on: date | None = None,
    file_number: str = FILE_NUMBER,
) -> ApplicationTag:
    """A tag made by the action (set-up for the tests that are about something else)."""
    return actions.tag_application(
        family,
        data=actions.TagData(
            kind=kind,
            processing_agency=agency,
            submitted_on=submitted_on or days_ago(14),
            file_number=file_number,
        ),
        by=by,
    )


@pytest.fixture
def jobcenter_tag(network: Network, family: Family, consent: Consent) -> ApplicationTag:
    """Ayşe's Bürgergeld application at the Jobcenter (category household: covered)."""
    return tag(family, network.anna, agency=network.jobcenter)


def events(action: str, user: User | None = None) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(action=action).order_by("id")
    if user is not None:
        found = found.filter(actor_id=user.pk)
    return list(found)


def detail_url(code: str) -> str:
    return reverse("tag_detail", args=[code])


def status_url(code: str) -> str:
    return reverse("tag_status", args=[code])


def unknown_code() -> str:
    code = actions.new_tag_code()
    assert not ApplicationTag.objects.filter(code=code).exists()
    return code


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
    first = tag(family, network.anna, agency=network.jobcenter)
    fresh = unknown_code()
    drawn = iter([first.code, fresh])
    monkeypatch.setattr(actions, "new_tag_code", lambda: next(drawn))

    second = tag(family, network.anna, agency=network.jobcenter)

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
        tag(family, network.anna, agency=agency)
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


def test_processing_office_gets_no_stamp(network: Network, jobcenter_tag: ApplicationTag) -> None:
    response = verified_client(network.ben).get(reverse("tag_stamp", args=[jobcenter_tag.code]))
    assert response.status_code == 404
    assert b"%PDF" not in response.content
    assert events("application_tag.stamp_printed") == []


# The processing office opens a tag by its code


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(str.lower, id="lower-case"),
        pytest.param(lambda code: " " + code.replace("-", " ") + " ", id="spaces"),
        pytest.param(lambda code: code.replace("-", ""), id="without-dashes"),
    ],
)
def test_clerk_opens_the_tag_by_the_code_typed_in_any_spelling(
    network: Network, jobcenter_tag: ApplicationTag, typed
) -> None:
    client = verified_client(network.ben)
    response = client.post(reverse("tag_lookup"), {"code": typed(jobcenter_tag.code)})
    assert response.status_code == 302
    assert response["Location"] == detail_url(jobcenter_tag.code)

    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Anna Albers" in html
    assert PROJECT_PHONE in html
    assert FILE_NUMBER in html


def test_clerk_opens_the_tag_from_the_qr_url_and_it_is_audited_as_application_support(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    response = verified_client(network.ben).get(detail_url(jobcenter_tag.code))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Anna Albers" in html
    assert PROJECT_PHONE in html
    [event] = events("application_tag.viewed", network.ben)
    assert event.family_id == str(family.pk)
    assert event.target_id == str(jobcenter_tag.pk)
    assert event.purpose == APPLICATION_SUPPORT
    assert event.agency_id == network.jobcenter.pk


def _uncovered_kind(network: Network, family: Family, consent: Consent):
    # Wohngeld discloses housing data; Ayşe's consent covers household, not housing.
    return tag(
        family, network.anna, kind=ApplicationTag.Kind.HOUSING_BENEFIT, agency=network.jobcenter
    ), network.ben


def _revoked(network: Network, family: Family, consent: Consent):
    tag_ = tag(family, network.anna, agency=network.jobcenter)
    core.revoke_consent(consent, note="Widerruf", by=network.anna)
    return tag_, network.ben


def _office_not_named(network: Network, family: Family, consent: Consent):
    # The Jugendamt processes it, but the consent names only the Jobcenter.
    return tag(family, network.anna, agency=network.jugendamt), network.clara


@pytest.mark.parametrize(
    "situation",
    [
        pytest.param(_uncovered_kind, id="category-not-covered"),
        pytest.param(_revoked, id="consent-revoked"),
        pytest.param(_office_not_named, id="office-not-named"),
    ],
)
def test_clerk_without_consent_is_refused_clearly_and_sees_nothing(
    network: Network, family: Family, consent: Consent, situation
) -> None:
    tag_, clerk = situation(network, family, consent)

    response = verified_client(clerk).get(detail_url(tag_.code))

    assert response.status_code == 403
    html = response.content.decode()
    assert REFUSAL in html
    for secret in (FILE_NUMBER, "Anna Albers", PROJECT_PHONE, family.reference):
        assert secret not in html
    [event] = events("application_tag.consent_missing", clerk)
    assert event.family_id == str(family.pk)
    assert event.target_id == str(tag_.pk)
    assert events("application_tag.viewed", clerk) == []


# Wrong codes reveal nothing


def test_unknown_code_looks_exactly_like_a_tag_of_someone_else(
    network: Network, family: Family, jobcenter_tag: ApplicationTag
) -> None:
    client = verified_client(network.dirk)
    missing = unknown_code()
    pairs = [
        (client.get(detail_url(missing)), client.get(detail_url(jobcenter_tag.code))),
        (
            client.get(reverse("tag_stamp", args=[missing])),
            client.get(reverse("tag_stamp", args=[jobcenter_tag.code])),
        ),
        (
            client.post(status_url(missing), {"state": "received"}),
            client.post(status_url(jobcenter_tag.code), {"state": "received"}),
        ),
    ]
    for unknown, foreign in pairs:
        assert unknown.status_code == foreign.status_code == 404
        assert unknown["Content-Type"] == foreign["Content-Type"]
        assert unknown.content == foreign.content
        assert b"Anna" not in foreign.content
    denied = events("application_tag.access_denied", network.dirk)
    assert [event.family_id for event in denied] == [None, str(family.pk)] * 3
    assert ApplicationTag.objects.get().state == ApplicationTag.State.SUBMITTED


# The look-up throttle


def fail(client: Client, times: int) -> None:
    for _ in range(times):
        assert client.get(detail_url(unknown_code())).status_code == 404


def test_too_many_wrong_codes_block_even_the_right_one(
    network: Network, jobcenter_tag: ApplicationTag, settings
) -> None:
    client = verified_client(network.ben)
    fail(client, settings.TAG_LOOKUP_MAX_FAILURES)

    typed = client.post(reverse("tag_lookup"), {"code": jobcenter_tag.code}, follow=True)

    assert typed.status_code == 429
    assert "Zu viele unbekannte Codes" in typed.content.decode()
    assert FILE_NUMBER not in typed.content.decode()
    assert client.get(detail_url(jobcenter_tag.code)).status_code == 429
    assert client.get(reverse("tag_lookup")).status_code == 429
    assert len(events("application_tag.lookup_throttled", network.ben)) == 3
    assert events("application_tag.viewed", network.ben) == []


def test_throttle_counts_wrong_codes_per_user(
    network: Network, jobcenter_tag: ApplicationTag, settings
) -> None:
    ben, dirk = verified_client(network.ben), verified_client(network.dirk)
    # Together they are over the limit; each of them is not.
    fail(ben, settings.TAG_LOOKUP_MAX_FAILURES - 1)
    fail(dirk, settings.TAG_LOOKUP_MAX_FAILURES - 1)
    assert ben.get(detail_url(jobcenter_tag.code)).status_code == 200

    fail(dirk, 1)
    assert dirk.get(detail_url(jobcenter_tag.code)).status_code == 429
    assert ben.get(detail_url(jobcenter_tag.code)).status_code == 200
    assert events("application_tag.lookup_throttled", network.ben) == []
    assert len(events("application_tag.lookup_throttled", network.dirk)) == 1


# Status changes by the processing office


def post_status(client: Client, tag_: ApplicationTag, **data: object):
    return client.post(status_url(tag_.code), data, follow=True)


def states(tag_: ApplicationTag) -> list[str]:
    return list(TagStatusChange.objects.filter(tag=tag_).values_list("state", flat=True))


def test_clerk_records_receipt_and_the_coach_is_notified_without_names(
    network: Network,
    family: Family,
    jobcenter_tag: ApplicationTag,
    django_capture_on_commit_callbacks,
) -> None:
    client = verified_client(network.ben)
    with django_capture_on_commit_callbacks(execute=True):
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
    [email] = mail.outbox
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
    decided = tag(family, network.anna, agency=network.jobcenter, submitted_on=days_ago(3))
    decide(decided, network.ben, after_days=1)
    received = tag(family, network.anna, agency=network.jobcenter, submitted_on=days_ago(10))
    actions.record_tag_status(received, state="received", by=network.ben)
    submitted = tag(family, network.anna, agency=network.jobcenter, submitted_on=days_ago(20))
    documents = tag(family, network.anna, agency=network.jobcenter, submitted_on=days_ago(40))
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
    ours = tag(family, network.anna, agency=network.jobcenter)
    theirs = tag(other_family, paula, agency=network.jobcenter)

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
                family,
                network.anna,
                kind=kind,
                agency=network.jobcenter,
                submitted_on=days_ago(next(serial) + days),
            ),
            network.ben,
            after_days=days,
        )
    # Undecided, and another project's decision: neither counts.
    tag(family, network.anna, agency=network.jobcenter, submitted_on=days_ago(90))
    other_family, paula = elsewhere
    decide(
        tag(other_family, paula, agency=network.jobcenter, submitted_on=days_ago(120)),
        network.ben,
        after_days=100,
    )

    assert sorted(durations(verified_client(network.anna))) == [
        ("Bürgergeld", "2", "15,5"),
        ("Kinderzuschlag", "1", "7,0"),
    ]
