"""Registering families, the duplicate check, the family list with names for the owning
project, and who may open a family record (the coach's project only; everyone else gets
404). The search itself: test_family_search.py."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from dienstweg import actions
from dienstweg.models import Consent, DataKey, Family, HouseholdMember
from tests.conftest import PASSWORD, consent_data, prepared_while, verified_client

REGISTER_URL = "/familien/neu/"
LIST_URL = "/familien/"
ROWS = 5  # what the page offers: one required person and four extra rows
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n%%EOF\n"

KAYA = [
    ("adult", "Murat", "Kaya", "1979-06-30"),
    ("child", "Elif", "Kaya", "2014-02-11"),
]


def registration(
    members: list[tuple[str, str, str, str]],
    *,
    owner: int,
    address: str = "Hegestraße 12, 45966 Gladbeck",
    phone: str = "0176 5550123",
    notes: str = "Vater sucht Arbeit als Berufskraftfahrer.",
    **extra: str,
) -> dict[str, str]:
    """The POST a browser sends: the management form, the hidden owner, and every row.

    A row the coach leaves empty still sends its kind, because a select always has a value."""
    data = {
        "members-TOTAL_FORMS": str(ROWS),
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "1",
        "members-MAX_NUM_FORMS": "15",
        "owner": str(owner),
        "address": address,
        "phone": phone,
        "notes": notes,
    }
    for row in range(ROWS):
        kind, first_name, last_name, birth_date = (
            members[row] if row < len(members) else ("adult", "", "", "")
        )
        data[f"members-{row}-kind"] = kind
        data[f"members-{row}-first_name"] = first_name
        data[f"members-{row}-last_name"] = last_name
        data[f"members-{row}-birth_date"] = birth_date
    data.update(extra)
    return data


def detail_url(family: Family) -> str:
    return f"/familien/{family.pk}/"


def register(network, first_name: str = "Murat", born: date = date(1979, 6, 30)) -> Family:
    return actions.register_family(
        owner=network.project,
        members=[actions.MemberData("adult", first_name, "Kaya", born)],
        address="Hegestraße 12, 45966 Gladbeck",
        phone="",
        notes="",
        by=network.anna,
    )


# Registering


def test_register_form_hides_the_owner_when_the_coach_has_one_project(network, anna_client):
    response = anna_client.get(REGISTER_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<input type="hidden" name="owner" value="{network.project.pk}"' in html
    assert 'name="members-TOTAL_FORMS"' in html


def test_coach_registers_a_family_and_sees_it_decrypted(network, anna_client):
    response = anna_client.post(REGISTER_URL, registration(KAYA, owner=network.project.pk))

    family = Family.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(family)
    assert family.owner == network.project
    assert family.registered_by == network.anna
    assert [(m.kind, m.display_name, m.birth_date) for m in family.members.all()] == [
        ("adult", "Murat Kaya", date(1979, 6, 30)),
        ("child", "Elif Kaya", date(2014, 2, 11)),
    ]
    page = anna_client.get(response["Location"])
    html = page.content.decode()
    assert f"Familie {family.reference} angelegt." in html
    for shown in (
        "Murat Kaya",
        "Elif Kaya",
        "30.06.1979",
        "11.02.2014",
        "Hegestraße 12, 45966 Gladbeck",
        "0176 5550123",
        "Vater sucht Arbeit als Berufskraftfahrer.",
    ):
        assert shown in html


def test_register_records_family_registered(network, anna_client):
    anna_client.post(REGISTER_URL, registration(KAYA, owner=network.project.pk))
    family = Family.objects.get()
    event = AuditEvent.objects.get(action="family.registered")
    assert (event.actor_id, event.family_id, event.family_ref) == (
        network.anna.pk,
        str(family.pk),
        family.reference,
    )


def test_references_count_up_within_the_year(network, anna_client):
    year = timezone.localdate().year
    anna_client.post(REGISTER_URL, registration(KAYA, owner=network.project.pk))
    other = [("adult", "Jana", "Nowak", "1990-03-03")]
    anna_client.post(REGISTER_URL, registration(other, owner=network.project.pk))
    references = sorted(Family.objects.values_list("reference", flat=True))
    assert references == [f"F-{year}-0001", f"F-{year}-0002"]


def test_reference_follows_the_highest_of_the_year(network, anna_client):
    year = timezone.localdate().year
    Family.objects.filter(pk=register(network).pk).update(reference=f"F-{year}-0041")
    Family.objects.filter(pk=register(network, "Jana").pk).update(reference=f"F-{year - 1}-0977")
    olga = [("adult", "Olga", "Berg", "1985-01-01")]
    response = anna_client.post(REGISTER_URL, registration(olga, owner=network.project.pk))
    assert response.status_code == 302
    assert Family.objects.order_by("-registered_at").first().reference == f"F-{year}-0042"


def test_same_person_again_shows_the_duplicate_warning_and_stores_nothing(
    network, family, anna_client
):
    # The same name and birth date as Ayşe Yılmaz, typed in other case and with spaces.
    again = [
        ("adult", "  AYŞE ", "yılmaz  ", "1988-04-12"),
        ("child", "Can", "Yılmaz", "2019-05-05"),
    ]
    members_before = HouseholdMember.objects.count()

    response = anna_client.post(REGISTER_URL, registration(again, owner=network.project.pk))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Möglicherweise schon erfasst:" in html
    assert family.reference in html
    assert "Eine Person mit diesem Namen und Geburtsdatum ist schon erfasst." in html
    assert 'name="confirm_duplicate"' in html
    assert Family.objects.count() == 1
    assert HouseholdMember.objects.count() == members_before
    assert AuditEvent.objects.filter(action="family.registered").count() == 1


def test_confirming_the_duplicate_registers_a_second_family(network, family, anna_client):
    again = [("adult", "AYŞE", "yılmaz", "1988-04-12")]
    response = anna_client.post(
        REGISTER_URL,
        registration(again, owner=network.project.pk, confirm_duplicate="on"),
    )
    assert response.status_code == 302
    assert Family.objects.count() == 2
    second = Family.objects.exclude(pk=family.pk).get()
    assert response["Location"] == detail_url(second)
    assert second.reference != family.reference


def test_another_birth_date_is_no_duplicate(network, family, anna_client):
    other = [("adult", "Ayşe", "Yılmaz", "1988-04-13")]
    response = anna_client.post(REGISTER_URL, registration(other, owner=network.project.pk))
    assert response.status_code == 302
    assert Family.objects.count() == 2


@pytest.mark.parametrize(
    ("members", "changes", "field", "message"),
    [
        pytest.param(
            [("child", "Elif", "Kaya", "2014-02-11")],
            {},
            None,
            "Zum Haushalt gehört mindestens eine erwachsene Person.",
            id="no-adult",
        ),
        pytest.param(
            [("adult", "Murat", "Kaya", (date.today() + timedelta(days=30)).isoformat())],
            {},
            "birth_date",
            "Bitte ein gültiges Geburtsdatum angeben.",
            id="birth-date-in-the-future",
        ),
        pytest.param(KAYA, {"address": ""}, "address", "erforderlich", id="missing-address"),
        pytest.param(
            [("adult", "", "Kaya", "1979-06-30")],
            {},
            "first_name",
            "erforderlich",
            id="missing-first-name",
        ),
    ],
)
def test_bad_input_shows_a_form_error_and_stores_nothing(
    network, anna_client, members, changes, field, message
):
    keys_before = DataKey.objects.count()
    response = anna_client.post(
        REGISTER_URL, registration(members, owner=network.project.pk, **changes)
    )

    assert response.status_code == 200
    form, formset = response.context["form"], response.context["members"]
    if field is None:
        assert message in form.non_field_errors()
    elif field in form.fields:
        assert any(message in error for error in form.errors[field])
    else:
        assert any(message in error for error in formset.forms[0].errors[field])
    assert message in response.content.decode()
    assert Family.objects.count() == 0
    assert HouseholdMember.objects.count() == 0
    assert DataKey.objects.count() == keys_before
    assert not AuditEvent.objects.filter(action="family.registered").exists()


def test_submitting_no_person_at_all_is_refused(network, anna_client):
    response = anna_client.post(REGISTER_URL, registration([], owner=network.project.pk))
    assert response.status_code == 200
    assert response.context["members"].non_form_errors()
    assert Family.objects.count() == 0


@pytest.mark.parametrize("who", ["ben", "dirk", "dora"])
def test_caseworkers_and_the_dpo_cannot_register(network, who):
    client = verified_client(getattr(network, who))
    assert client.get(REGISTER_URL).status_code == 403
    response = client.post(REGISTER_URL, registration(KAYA, owner=network.project.pk))
    assert response.status_code == 403
    assert Family.objects.count() == 0


# The list and the search


def test_list_shows_names_references_and_households(network, family, anna_client):
    response = anna_client.get(LIST_URL)
    html = response.content.decode()
    assert family.reference in html
    assert f'href="{detail_url(family)}"' in html
    assert "Ayşe Yılmaz" in html
    assert "mit Leyla, Emre" in html
    assert "1 Erw., 2 Kinder" in html
    # The list names the household; address, phone and birth dates stay in the record.
    [table] = re.findall(r"<table.*</table>", html, re.DOTALL)
    # The links' family ids are random hex and may hold "1988" by chance: left out.
    table = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "", table)
    for secret in ("Horster", "02043 123456", "1988", "12.04."):
        assert secret not in table


def test_list_counts_one_child_in_the_singular(network, anna_client):
    actions.register_family(
        owner=network.project,
        members=[
            actions.MemberData("adult", "Murat", "Kaya", date(1979, 6, 30)),
            actions.MemberData("child", "Elif", "Kaya", date(2014, 2, 11)),
        ],
        address="",
        phone="",
        notes="",
        by=network.anna,
    )
    html = anna_client.get(LIST_URL).content.decode()
    assert "1 Erw., 1 Kind<" in html
    assert "1 Kinder" not in html


def test_list_names_another_surname_in_full(network, anna_client):
    actions.register_family(
        owner=network.project,
        members=[
            actions.MemberData("adult", "Murat", "Kaya", date(1979, 6, 30)),
            actions.MemberData("adult", "Jana", "Schmidt", date(1981, 3, 2)),
            actions.MemberData("child", "Elif", "Kaya", date(2014, 2, 11)),
        ],
        address="",
        phone="",
        notes="",
        by=network.anna,
    )
    html = anna_client.get(LIST_URL).content.decode()
    assert "Murat Kaya" in html and "mit Jana Schmidt, Elif" in html


def test_list_is_paginated_newest_first(network, anna_client, settings):
    settings.FAMILY_PAGE_SIZE = 2
    families = [register(network, name) for name in ("Murat", "Jana", "Olga", "Paul", "Rita")]
    newest_first = [family.reference for family in reversed(families)]

    pages = [anna_client.get(LIST_URL, {"page": number}) for number in (1, 2, 3)]

    shown = [
        re.findall(r'class="reference"[^>]*>(F-\d{4}-\d{4})<', p.content.decode()) for p in pages
    ]
    assert shown == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert "Seite 1 von 3" in pages[0].content.decode()
    assert 'rel="next"' in pages[0].content.decode()
    assert 'rel="prev"' in pages[2].content.decode()


def test_list_page_queries_do_not_grow_with_the_families(network, anna_client):
    def queries_for_list() -> int:
        anna_client.get(LIST_URL)  # warm-up: the session's own queries
        with CaptureQueriesContext(connection) as queries:
            response = anna_client.get(LIST_URL)
        assert response.status_code == 200
        return len(queries.captured_queries)

    for number in range(3):
        register(network, f"Person{number}")
    with_three = queries_for_list()
    for number in range(3, 30):
        register(network, f"Person{number}")
    with_thirty = queries_for_list()
    assert with_thirty == with_three


@pytest.mark.parametrize("who", ["ben", "dirk", "dora"])
def test_others_never_see_the_family_in_their_list(network, family, who):
    client = verified_client(getattr(network, who))
    listed = client.get(LIST_URL)
    assert family.reference not in listed.content.decode()
    assert listed.context["page"].total == 0
    found = client.post(LIST_URL, {"query": "Yılmaz 12.04.1988"})
    assert family.reference not in found.content.decode()


# Who may open a family


def staff_client(network, who: str):
    if who == "nobody":  # verified, but member of no agency
        user = actions.create_staff("nina@example.org", full_name="Nina Niemand", password=PASSWORD)
        return verified_client(user)
    return verified_client(getattr(network, who))


@pytest.fixture
def signed_consent(network, family) -> Consent:
    return actions.grant_consent(
        family,
        data=consent_data(network, family, method=Consent.Method.SIGNED_FORM, evidence=PDF),
        by=network.anna,
    )


@pytest.mark.parametrize("who", ["ben", "dirk", "dora", "nobody"])
def test_others_get_404_for_the_record_the_consent_and_the_evidence(
    network, family, signed_consent, who
):
    client = staff_client(network, who)
    base = detail_url(family)
    consent_url = f"{base}einwilligung/"
    revoke_url = f"{base}einwilligung/{signed_consent.pk}/widerruf/"
    evidence_url = f"{base}einwilligung/{signed_consent.pk}/nachweis/"

    assert client.get(base).status_code == 404
    assert client.get(consent_url).status_code == 404
    posted = client.post(
        consent_url,
        {
            "recipients": [str(network.jobcenter.pk)],
            "categories": ["identity"],
            "purposes": ["referral"],
            "valid_from": date.today().isoformat(),
            "valid_until": (date.today() + timedelta(days=30)).isoformat(),
            "given_by": str(signed_consent.given_by_id),
            "capacity": "adult_self",
            "method": "signed_form",
            "text_version": "2026-1",
            "evidence": SimpleUploadedFile("scan.pdf", PDF, content_type="application/pdf"),
        },
    )
    assert posted.status_code == 404
    assert client.post(revoke_url, {"note": "weg damit"}).status_code == 404
    evidence = client.get(evidence_url)
    assert evidence.status_code == 404
    assert PDF not in evidence.content

    assert Consent.objects.count() == 1
    signed_consent.refresh_from_db()
    assert signed_consent.revoked_at is None
    assert not AuditEvent.objects.filter(
        action__in=["family.viewed", "consent.evidence_viewed", "consent.revoked"]
    ).exists()


def test_unknown_family_gets_404(anna_client):
    assert anna_client.get("/familien/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_opening_the_record_records_family_viewed(network, family, anna_client):
    response = anna_client.get(detail_url(family))
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="family.viewed")
    assert event.actor_id == network.anna.pk
    assert event.family_id == str(family.pk)
    assert event.family_ref == family.reference
    assert (event.target_type, event.target_id) == ("dienstweg.family", str(family.pk))
    assert event.agency_id == network.project.pk


def test_refused_access_is_audited_under_the_family(network, family):
    from tests.conftest import verified_client

    response = verified_client(network.dirk).get(f"/familien/{family.pk}/")
    assert response.status_code == 404
    event = AuditEvent.objects.get(action="family.access_denied")
    assert event.actor_id == network.dirk.pk
    assert event.family_id == str(family.pk)


def test_reference_numbers_go_past_9999(network):
    from dienstweg import actions as family_actions
    from tests.conftest import YILMAZ

    year = timezone.localdate().year
    first = family_actions.register_family(
        owner=network.project, members=YILMAZ[:1], address="-", phone="", notes="", by=network.anna
    )
    Family.objects.filter(pk=first.pk).update(reference=f"F-{year}-9999")
    second = family_actions.register_family(
        owner=network.project, members=YILMAZ[:1], address="-", phone="", notes="", by=network.anna
    )
    assert second.reference == f"F-{year}-10000"
    third = family_actions.register_family(
        owner=network.project, members=YILMAZ[:1], address="-", phone="", notes="", by=network.anna
    )
    assert third.reference == f"F-{year}-10001"


def test_search_is_sent_by_post_so_names_stay_out_of_urls(network, family, anna_client):
    html = anna_client.get(LIST_URL).content.decode()
    assert re.search(r'<form method="post"[^>]* class="search', html)
    # Names in a query string are not searched (and so never needed there).
    response = anna_client.get(LIST_URL, {"query": "Nobody"})
    assert family.reference in response.content.decode()


def test_family_page_reads_memberships_once_and_does_not_grow_with_its_cases(
    network, family, consent, anna_client
):
    # The record and every app's section share one reading of the user's memberships.
    from tests.builders import build_referral, build_tag

    def queries_for_page() -> list[str]:
        anna_client.get(f"/familien/{family.pk}/")  # warm-up: the session's own queries
        with CaptureQueriesContext(connection) as queries:
            response = anna_client.get(f"/familien/{family.pk}/")
        assert response.status_code == 200
        return [query["sql"] for query in queries.captured_queries]

    build_referral(network, family)
    build_tag(network, family)
    with_one = queries_for_page()
    for _ in range(4):
        build_referral(network, family)
        build_tag(network, family)
    with_five = queries_for_page()
    assert len(with_five) == len(with_one)
    memberships = [sql for sql in with_five if sql.startswith('SELECT "dienstweg_membership"')]
    # One for the record and its sections. The navigation's unread badge reads them afresh
    # (a changed right shows at once) only when one of her threads has an unread message,
    # and none has here (messaging/queue.py).
    assert len(memberships) == 1


@pytest.mark.postgres
def test_the_family_page_plans_its_queries_once(network, family, anna_client):
    """A page that reads a few rows by their ids (dienstweg.compiled.planned_once)."""
    prepared = prepared_while(anna_client, reverse("family_detail", args=[family.pk]))
    assert any('FROM "dienstweg_householdmember"' in statement for statement in prepared)
