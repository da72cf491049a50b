"""The lists and pages of referrals and application tags cost the same number of queries for
a few rows as for thirty and more: no query per row, attachment, event or status change.

Each test measures a page with one or a few rows, adds rows through the real actions, and
measures again. A warm-up request first fills the per-process caches (content types, the
session's bookkeeping), so that both measurements see the same steady state."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from applications import actions as application_actions
from applications.models import ApplicationTag
from dienstweg import actions as core
from dienstweg.models import Agency, Consent, DataCategory, Family, Membership, Purpose, User
from dienstweg.uploads import Upload
from referrals.actions import steps as referral_steps
from referrals.models import Referral
from tests.builders import build_referral, build_tag
from tests.conftest import Network, make_staff, verified_client

PDF = b"%PDF-1.4\n% Anlage\n%%EOF\n"
MANY = 30  # more than a page: the second page is measured too
PAGE = settings.REFERRAL_PAGE_SIZE


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    # Tag look-ups keep a failure counter in the cache.
    cache.clear()


@dataclass
class Cast:
    """The network of tests/conftest.py, plus a second project and more Jobcenter staff, so
    that rows differ in every related object a page shows (family, agencies, people)."""

    network: Network
    second_project: Agency
    second_coach: User
    jobcenter_lead: User
    caseworkers: list[User]


@pytest.fixture
def cast(network: Network) -> Cast:
    second = core.create_agency(name="Familienbüro Dorsten", kind="project", rechtskreis="other")
    return Cast(
        network=network,
        second_project=second,
        second_coach=make_staff("erik@example.org", "Erik Esser", second, "coach"),
        jobcenter_lead=make_staff(
            "jana@example.org", "Jana Jansen", network.jobcenter, Membership.Role.LEAD
        ),
        caseworkers=[
            network.ben,
            make_staff(
                "kai@example.org", "Kai Kaya", network.jobcenter, Membership.Role.CASEWORKER
            ),
        ],
    )


def consented_family(cast: Cast, number: int, *, second_project: bool = False) -> Family:
    """A family of one of the projects, with a consent for the Jobcenter and the Jugendamt
    that covers referrals and application support of every kind of tag."""
    owner = cast.second_project if second_project else cast.network.project
    coach = cast.second_coach if second_project else cast.network.anna
    family = core.register_family(
        owner=owner,
        members=[core.MemberData("adult", f"Person{number}", "Muster", date(1980, 1, 1))],
        address=f"Hauptstraße {number}, 45964 Gladbeck",
        phone="02043 000000",
        notes="",
        by=coach,
    )
    core.grant_consent(
        family,
        data=core.ConsentData(
            recipients=[cast.network.jobcenter, cast.network.jugendamt],
            categories=[
                DataCategory.IDENTITY,
                DataCategory.HOUSEHOLD,
                DataCategory.EMPLOYMENT,
                DataCategory.CHILDREN,
                DataCategory.HOUSING,
            ],
            purposes=[Purpose.REFERRAL, Purpose.APPLICATION_SUPPORT],
            valid_from=timezone.localdate(),
            valid_until=timezone.localdate() + timedelta(days=365),
            given_by=family.members.get(),
            capacity=Consent.Capacity.ADULT_SELF,
            method=Consent.Method.ORAL_RECORDED,
            text_version="2026-1",
            witness_note="Belehrung im Beisein einer Kollegin",
        ),
        by=coach,
    )
    return family


def add_referrals(cast: Cast, numbers: range) -> list[Referral]:
    """Referrals of different families from both projects, mostly to the Jobcenter: some
    assigned (to different caseworkers), some accepted, some still drafts."""
    made = []
    for number in numbers:
        second = number % 2 == 1
        family = consented_family(cast, number, second_project=second)
        coach = cast.second_coach if second else cast.network.anna
        send = number % 10 != 9
        referral = build_referral(
            cast.network,
            family,
            to=cast.network.jugendamt if number % 6 == 0 else cast.network.jobcenter,
            need=f"Bedarf {number}",
            summary="Kurz gefasst.",
            notes={DataCategory.EMPLOYMENT: "Sucht Teilzeit"},
            send=send,
            by=coach,
        )
        if send and referral.to_agency_id == cast.network.jobcenter.pk and number % 4 != 3:
            assignee = cast.caseworkers[number % 2]
            referral = referral_steps.assign_referral(
                referral, assignee=assignee, by=cast.jobcenter_lead
            )
            if number % 3 == 2:
                referral = referral_steps.accept_referral(referral, by=assignee)
        made.append(referral)
    # Some are overdue, for the "overdue" filter.
    overdue = timezone.now() - timedelta(days=30)
    Referral.objects.filter(pk__in=[r.pk for r in made[::3]], state="sent").update(sent_at=overdue)
    return made


# Ceilings well above today's counts (a verified request costs a few queries for the
# session, the account and its second factor, and the navigation's live badges a few more):
# only the equality checks are exact.
LIST_CEILING = 14
DETAIL_CEILING = 35
# A referral's or a tag's own page (not the lists: "eingang", "ausgang", "code").
ROW_LINK = re.compile(r"/(?:vermittlungen|antraege)/[0-9A-Za-z-]{14,36}/")


@dataclass
class Measured:
    queries: list[str]
    rows: int  # links to referrals or tags on the page


NEXT_LINK = re.compile(r'href="\?([^"]+)" rel="next"')


def next_page(client: Client, url: str) -> str:
    """The URL of the "weiter" link on the page at URL."""
    match = NEXT_LINK.search(client.get(url).content.decode())
    assert match, f"no next page on {url}"
    return url.split("?")[0] + "?" + html.unescape(match.group(1))


def after_newest(referrals: QuerySet[Referral], field: str) -> str:
    """A query string for the page after the newest referral (the list's own cursor)."""
    newest = referrals.order_by(f"-{field}", "-pk").first()
    assert newest is not None
    return "?" + urlencode({"nach": f"{getattr(newest, field).isoformat()}~{newest.pk}"})


def measure(client: Client, url: str) -> Measured:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    rows = len(set(ROW_LINK.findall(response.content.decode())))
    return Measured([query["sql"] for query in captured.captured_queries], rows)


def assert_same_count(few: Measured, many: Measured, *, ceiling: int = LIST_CEILING) -> None:
    assert len(many.queries) == len(few.queries), "with few rows:\n{}\n\nwith many:\n{}".format(
        "\n".join(few.queries), "\n".join(many.queries)
    )
    assert len(many.queries) <= ceiling


def inbox_filters(cast: Cast) -> list[str]:
    """Each matches at least one of the first seven referrals (see add_referrals)."""
    return [
        "",
        "?state=sent",
        "?state=accepted",
        "?assignee=none",
        "?overdue=on",
        "?state=sent&overdue=on&assignee=none",
        f"?agency={cast.second_project.pk}",
        f"?agency={cast.network.project.pk}&state=sent",
        # The inbox's orders (due date is the default; received newest first by keyset).
        "?sortierung=eingang",
        "?sortierung=bedarf",
        "?sortierung=bedarf&state=sent",
        "?sortierung=faellig&overdue=on",
    ]


def test_inbox_costs_the_same_for_a_few_and_thirty_referrals(cast: Cast) -> None:
    add_referrals(cast, range(1, 8))
    inbox = reverse("referral_inbox")
    # The receiving lead's inbox, and a caseworker's "assigned to me".
    lead = verified_client(cast.jobcenter_lead)
    kai = verified_client(cast.caseworkers[1])
    lead.get(inbox)
    kai.get(inbox)
    few = {f: measure(lead, inbox + f) for f in inbox_filters(cast)}
    few_mine = measure(kai, inbox + "?assignee=me")
    assert all(few[f].rows for f in few) and few_mine.rows
    received = Referral.objects.filter(to_agency=cast.network.jobcenter, sent_at__isnull=False)
    few_next = measure(lead, inbox + after_newest(received, "sent_at") + "&sortierung=eingang")

    add_referrals(cast, range(8, 8 + 40))
    assert received.count() >= MANY
    assert received.filter(assignee=cast.caseworkers[1]).count() >= 10
    many = {f: measure(lead, inbox + f) for f in few}
    many_next = measure(lead, next_page(lead, inbox + "?sortierung=eingang"))
    # The default order pages by number: its second page costs what the first did.
    many_second = measure(lead, next_page(lead, inbox))
    assert many[""].rows == PAGE and many_next.rows and many_second.rows
    for query_string in few:
        assert_same_count(few[query_string], many[query_string])
    assert_same_count(few_next, many_next)
    assert_same_count(few[""], many_second)
    assert_same_count(few_mine, measure(kai, inbox + "?assignee=me"))


def test_outbox_costs_the_same_for_one_and_thirty_referrals(cast: Cast) -> None:
    add_referrals(cast, range(0, 1))
    anna = verified_client(cast.network.anna)
    outbox = reverse("referral_outbox")
    anna.get(outbox)
    few = {f: measure(anna, outbox + f) for f in ("", "?state=sent")}
    assert few[""].rows == 1
    sent = Referral.objects.filter(from_agency=cast.network.project)
    few_next = measure(anna, outbox + after_newest(sent, "created_at"))

    # Both projects' referrals: Anna's outbox has half of them.
    add_referrals(cast, range(1, 2 * MANY))
    assert Referral.objects.filter(from_agency=cast.network.project).count() == MANY
    many = {f: measure(anna, outbox + f) for f in few}
    many_next = measure(anna, next_page(anna, outbox))
    assert (many[""].rows, many_next.rows) == (PAGE, MANY - PAGE)
    for query_string in few:
        assert_same_count(few[query_string], many[query_string])
    assert_same_count(few_next, many_next)


def detailed_referral(cast: Cast, number: int, *, attachments: int, reassignments: int) -> Referral:
    """A sent referral from Anna, assigned (after REASSIGNMENTS changes of mind) to Kai."""
    family = consented_family(cast, number)
    referral = build_referral(
        cast.network,
        family,
        need="Arbeitsvermittlung",
        summary="Kurz gefasst.",
        notes={DataCategory.EMPLOYMENT: "Sucht Teilzeit"},
        attachments=[Upload(f"anlage-{i}.pdf", PDF) for i in range(attachments)],
    )
    for step in range(reassignments):
        # Different assignees on the timeline, alternately Ben and Kai.
        referral = referral_steps.assign_referral(
            referral, assignee=cast.caseworkers[step % 2], by=cast.jobcenter_lead
        )
    return referral_steps.assign_referral(
        referral, assignee=cast.caseworkers[1], by=cast.jobcenter_lead
    )


def test_referral_detail_costs_the_same_with_three_attachments_and_a_long_timeline(
    cast: Cast,
) -> None:
    short = detailed_referral(cast, 1, attachments=1, reassignments=0)
    long = detailed_referral(cast, 2, attachments=3, reassignments=5)
    assert (short.events.count(), short.attachments.count()) == (3, 1)
    assert (long.events.count(), long.attachments.count()) == (8, 3)
    for user in (cast.network.anna, cast.caseworkers[1], cast.jobcenter_lead):
        client = verified_client(user)
        # Warm-up of both: the receiving agency's first opening marks each as no longer new.
        client.get(reverse("referral_detail", args=[short.pk]))
        client.get(reverse("referral_detail", args=[long.pk]))
        few = measure(client, reverse("referral_detail", args=[short.pk]))
        many = measure(client, reverse("referral_detail", args=[long.pk]))
        assert_same_count(few, many, ceiling=DETAIL_CEILING)


def tag(cast: Cast, family: Family, number: int) -> ApplicationTag:
    """A tag of one of the kinds, at the Jobcenter or the Jugendamt, in one of the states."""
    kinds = [
        (ApplicationTag.Kind.CITIZENS_BENEFIT, cast.network.jobcenter),
        (ApplicationTag.Kind.EDUCATION, cast.network.jobcenter),
        (ApplicationTag.Kind.HOUSING_BENEFIT, cast.network.jobcenter),
        (ApplicationTag.Kind.CHILDCARE, cast.network.jugendamt),
        (ApplicationTag.Kind.CHILD_SUPPLEMENT, cast.network.jobcenter),
    ]
    kind, office = kinds[number % len(kinds)]
    today = timezone.localdate()
    made = build_tag(
        cast.network,
        family,
        kind=kind,
        office=office,
        submitted_on=today - timedelta(days=40),
        file_number=f"AZ-{number}",
    )
    clerk = cast.network.ben if office == cast.network.jobcenter else cast.network.clara
    if number % 3 == 0:
        made = application_actions.record_tag_status(
            made, state="decided", decided_on=today - timedelta(days=number % 7), by=clerk
        )
    elif number % 3 == 1:
        made = application_actions.record_tag_status(
            made, state="documents_requested", note="Kontoauszüge", by=clerk
        )
    return made


def test_tag_list_costs_the_same_for_one_and_thirty_tags(cast: Cast) -> None:
    # Thirty tags over ten families, decided ones of every kind (the durations table).
    families = [consented_family(cast, number) for number in range(MANY // 3)]
    tag(cast, families[0], 0)
    anna = verified_client(cast.network.anna)
    tags = reverse("tag_list")
    anna.get(tags)
    few = {"": measure(anna, tags)}
    assert few[""].rows == 1

    for number in range(1, MANY):
        tag(cast, families[number % len(families)], number)
    decided = ApplicationTag.objects.filter(state="decided").values_list("kind", flat=True)
    assert len(set(decided)) == 5
    many = {f: measure(anna, tags + f) for f in ("", "?page=2")}
    assert (many[""].rows, many["?page=2"].rows) == (PAGE, MANY - PAGE)
    assert_same_count(few[""], many[""])
    # A deeper page costs what page 1 costs (ids first, then those rows).
    assert_same_count(many[""], many["?page=2"])


def test_tag_detail_costs_the_same_for_a_long_status_timeline(cast: Cast) -> None:
    family = consented_family(cast, 1)
    today = timezone.localdate()

    def tagged(steps: list[str]) -> ApplicationTag:
        made = build_tag(
            cast.network, family, submitted_on=today - timedelta(days=10), file_number="BG-1"
        )
        for number, state in enumerate(steps):
            clerk = cast.caseworkers[number % 2]  # two people on the timeline
            note = "Mietvertrag" if state == "documents_requested" else ""
            made = application_actions.record_tag_status(made, state=state, note=note, by=clerk)
        return made

    short = tagged(["documents_requested"])
    long = tagged(["received", "documents_requested"] * 5)
    assert (short.changes.count(), long.changes.count()) == (2, 11)
    for user in (cast.network.anna, cast.network.ben):
        client = verified_client(user)
        client.get(reverse("tag_detail", args=[short.code]))
        few = measure(client, reverse("tag_detail", args=[short.code]))
        many = measure(client, reverse("tag_detail", args=[long.code]))
        assert_same_count(few, many, ceiling=DETAIL_CEILING)
