"""Flags of unusual access: detection from the trail (many families outside one's own
cases, bulk exports, reads outside working hours), its re-runs, the console's list and
review, and the command. Events are recorded at past moments with timezone.now patched."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from io import StringIO
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.trail import record
from dienstweg.access import dpo_scope_of
from dienstweg.actions import ActionError
from dienstweg.models import Membership, User
from privacy.flags import (
    MAX_EXPORTS_PER_DAY,
    find_flags,
    open_flag_count,
    review_flag,
)
from privacy.models import AccessFlag
from tests.audit.helpers import Family
from tests.conftest import Network, verified_client

BERLIN = ZoneInfo("Europe/Berlin")
WEDNESDAY = date(2026, 3, 4)
SATURDAY = date(2026, 3, 7)
Kind = AccessFlag.Kind

pytestmark = pytest.mark.django_db


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN)


def families(count: int) -> list[Family]:
    return [Family(pk=uuid.uuid4(), reference=f"F-2026-{n:04d}") for n in range(1, count + 1)]


def recorded(
    user: User,
    action: str,
    when: datetime,
    about: Iterable[Family | None] = (None,),
    *,
    details: Mapping[str, object] | None = None,
    agency_id: int | None = None,
) -> list[AuditEvent]:
    """One event by USER per family in ABOUT, recorded as if at WHEN."""
    with patch("django.utils.timezone.now", return_value=when), transaction.atomic():
        return [
            record(
                user,
                action,
                target=("test.thing", "1"),
                family=family,
                details=details,
                agency_id=agency_id,
            )
            for family in about
        ]


def flags_of(user: User, kind: str) -> list[AccessFlag]:
    return list(AccessFlag.objects.filter(actor_id=user.pk, kind=kind))


# Many families outside one's own cases


few_families = override_settings(FLAG_FAMILIES_PER_DAY=3)


@few_families
def test_reading_more_families_than_the_limit_is_flagged(network: Network) -> None:
    about = families(4)
    read = recorded(
        network.ben, "referral.viewed", at(WEDNESDAY, 10), about, agency_id=network.jobcenter.pk
    )
    recorded(network.ben, "family.access_denied", at(WEDNESDAY, 11), about[:1])
    [flag] = [f for f in find_flags(WEDNESDAY) if f.kind == Kind.MANY_FAMILIES]
    assert (flag.actor_id, flag.day, flag.family_count, flag.event_count) == (
        network.ben.pk,
        WEDNESDAY,
        4,
        5,
    )
    assert flag.first_event_id == read[0].pk
    # The last event (the refusal) names no agency: Ben's only agency, for its DPO.
    assert flag.agency_id == network.jobcenter.pk


@few_families
def test_reading_as_many_families_as_the_limit_is_not_flagged(network: Network) -> None:
    read = families(3)
    recorded(network.ben, "referral.viewed", at(WEDNESDAY, 10), read)
    recorded(network.ben, "message.read", at(WEDNESDAY, 11), read)
    find_flags(WEDNESDAY)
    assert flags_of(network.ben, Kind.MANY_FAMILIES) == []


@few_families
def test_own_cases_do_not_count(network: Network) -> None:
    read = families(5)
    # Worked on two of them within 90 days, on a third later the same day.
    recorded(network.ben, "referral.accepted", at(WEDNESDAY - timedelta(days=90), 9), read[:1])
    recorded(network.ben, "message.posted", at(WEDNESDAY - timedelta(days=3), 9), read[1:2])
    recorded(network.ben, "referral.viewed", at(WEDNESDAY, 10), read)
    recorded(network.ben, "application_tag.status_changed", at(WEDNESDAY, 16), read[2:3])
    find_flags(WEDNESDAY)
    assert flags_of(network.ben, Kind.MANY_FAMILIES) == []


@few_families
def test_work_older_than_90_days_or_by_someone_else_does_not_make_a_case_ones_own(
    network: Network,
) -> None:
    read = families(4)
    recorded(network.ben, "referral.accepted", at(WEDNESDAY - timedelta(days=91), 9), read[:1])
    recorded(network.clara, "referral.accepted", at(WEDNESDAY, 9), read[1:2])
    recorded(network.ben, "family.viewed", at(WEDNESDAY - timedelta(days=5), 9), read[2:3])
    recorded(network.ben, "referral.viewed", at(WEDNESDAY, 10), read)
    find_flags(WEDNESDAY)
    [flag] = flags_of(network.ben, Kind.MANY_FAMILIES)
    assert flag.family_count == 4
    assert flags_of(network.clara, Kind.MANY_FAMILIES) == []


@few_families
def test_seeing_families_on_the_list_or_in_search_hits_does_not_make_them_ones_own(
    network: Network,
) -> None:
    read = families(4)
    recorded(network.ben, "family.listed", at(WEDNESDAY, 9), read[:2])
    recorded(network.ben, "family.searched", at(WEDNESDAY, 9), read[2:])
    recorded(network.ben, "referral.viewed", at(WEDNESDAY, 10), read)
    find_flags(WEDNESDAY)
    [flag] = flags_of(network.ben, Kind.MANY_FAMILIES)
    assert flag.family_count == 4


@few_families
def test_reads_count_on_their_local_day(network: Network) -> None:
    read = families(4)
    # 23:30 in Berlin is 22:30 UTC, the day before in local time: not WEDNESDAY's.
    recorded(network.ben, "referral.viewed", at(WEDNESDAY - timedelta(days=1), 23, 30), read)
    recorded(network.ben, "referral.viewed", at(WEDNESDAY, 10), read[:3])
    find_flags(WEDNESDAY)
    assert flags_of(network.ben, Kind.MANY_FAMILIES) == []


@few_families
def test_the_dpos_console_reads_are_no_reads_of_family_data(network: Network) -> None:
    recorded(network.dora, "console.access_report", at(WEDNESDAY, 10), families(6))
    recorded(network.dora, "console.searched", at(WEDNESDAY, 21), families(6))
    find_flags(WEDNESDAY)
    assert not AccessFlag.objects.filter(
        actor_id=network.dora.pk, kind__in=[Kind.MANY_FAMILIES, Kind.OUTSIDE_HOURS]
    ).exists()


# Bulk exports


def export(user: User, rows: int, when: datetime) -> None:
    recorded(user, "console.exported", when, details={"format": "csv", "rows": rows})


@override_settings(FLAG_EXPORT_EVENTS=100)
def test_exports_above_the_row_limit_are_flagged(network: Network) -> None:
    export(network.dora, 60, at(WEDNESDAY, 9))
    export(network.dora, 41, at(WEDNESDAY, 15))
    [flag] = [f for f in find_flags(WEDNESDAY) if f.kind == Kind.BULK_EXPORT]
    assert (flag.actor_id, flag.event_count) == (network.dora.pk, 2)


@override_settings(FLAG_EXPORT_EVENTS=100)
def test_exports_up_to_the_row_limit_are_not_flagged(network: Network) -> None:
    export(network.dora, 60, at(WEDNESDAY, 9))
    export(network.dora, 40, at(WEDNESDAY, 15))
    export(network.dora, 500, at(WEDNESDAY + timedelta(days=1), 9))  # another day
    find_flags(WEDNESDAY)
    assert flags_of(network.dora, Kind.BULK_EXPORT) == []


def test_more_exports_than_allowed_a_day_are_flagged(network: Network) -> None:
    report = {"format": "pdf"}
    family = families(1)
    for minute in range(MAX_EXPORTS_PER_DAY):
        recorded(network.dora, "console.access_report", at(WEDNESDAY, 9, minute), family,
                 details=report)  # fmt: skip
    find_flags(WEDNESDAY)
    assert flags_of(network.dora, Kind.BULK_EXPORT) == []
    recorded(network.dora, "console.access_report", at(WEDNESDAY, 10), family, details=report)
    find_flags(WEDNESDAY)
    [flag] = flags_of(network.dora, Kind.BULK_EXPORT)
    assert (flag.event_count, flag.family_count) == (MAX_EXPORTS_PER_DAY + 1, 1)


# Outside working hours


working_hours = override_settings(WORKING_HOURS_START=7, WORKING_HOURS_END=19)


@pytest.mark.parametrize("hour, minute", [(6, 59), (19, 0), (23, 59), (0, 0)])
@working_hours
def test_reads_outside_working_hours_are_flagged(network: Network, hour: int, minute: int) -> None:
    recorded(network.anna, "family.viewed", at(WEDNESDAY, hour, minute), families(1))
    find_flags(WEDNESDAY)
    [flag] = flags_of(network.anna, Kind.OUTSIDE_HOURS)
    assert (flag.event_count, flag.family_count) == (1, 1)


@working_hours
def test_reads_within_working_hours_are_not_flagged(network: Network) -> None:
    recorded(network.anna, "family.viewed", at(WEDNESDAY, 7, 0), families(1))
    recorded(network.anna, "message.read", at(WEDNESDAY, 18, 59), families(1))
    # Work that is no read (a login, a message written) is no read of family data.
    recorded(network.anna, "auth.login", at(WEDNESDAY, 22))
    recorded(network.anna, "message.posted", at(WEDNESDAY, 22), families(1))
    find_flags(WEDNESDAY)
    assert flags_of(network.anna, Kind.OUTSIDE_HOURS) == []


@working_hours
def test_reads_at_the_weekend_are_flagged_at_any_hour(network: Network) -> None:
    recorded(network.anna, "family.viewed", at(SATURDAY, 11), families(2))
    find_flags(SATURDAY)
    [flag] = flags_of(network.anna, Kind.OUTSIDE_HOURS)
    assert flag.family_count == 2


# Re-runs and the record of each flag


@working_hours
def test_running_again_updates_the_open_flag_and_records_it_once(network: Network) -> None:
    recorded(network.anna, "family.viewed", at(WEDNESDAY, 22), families(1))
    [first] = find_flags(WEDNESDAY)
    find_flags(WEDNESDAY)
    later = recorded(network.anna, "family.viewed", at(WEDNESDAY, 23), families(2))
    [again] = find_flags(WEDNESDAY)
    assert again.pk == first.pk
    assert AccessFlag.objects.count() == 1
    assert (again.event_count, again.family_count, again.last_event_id) == (3, 3, later[-1].pk)
    assert AuditEvent.objects.filter(action="console.access_flagged").count() == 1


@working_hours
def test_a_flag_names_the_agency_of_its_last_event_or_else_the_actors_only_agency(
    network: Network,
) -> None:
    # So that it reaches that agency's DPO: a flag of no agency only the network's DPO sees.
    recorded(network.ben, "message.read", at(WEDNESDAY, 22), families(1))  # names no agency
    recorded(network.clara, "referral.viewed", at(WEDNESDAY, 5), families(1))
    recorded(network.clara, "message.read", at(WEDNESDAY, 23), families(1))
    Membership.objects.create(user=network.clara, agency=network.project, role="lead")
    recorded(
        network.anna, "message.read", at(WEDNESDAY, 6), families(1), agency_id=network.project.pk
    )
    find_flags(WEDNESDAY)
    agencies = dict(AccessFlag.objects.values_list("actor_id", "agency_id"))
    assert agencies == {
        network.ben.pk: network.jobcenter.pk,  # his only agency
        network.clara.pk: None,  # two agencies, and her last event names neither
        network.anna.pk: network.project.pk,  # her last event's
    }


@working_hours
def test_records_each_new_flag(network: Network) -> None:
    recorded(network.anna, "family.viewed", at(WEDNESDAY, 22), families(1))
    [flag] = find_flags(WEDNESDAY)
    [event] = AuditEvent.objects.filter(action="console.access_flagged")
    assert (event.actor_id, event.actor_label) == (None, "system:flags")
    assert (event.target_type, event.target_id) == ("console.accessflag", str(flag.pk))
    assert event.details == {
        "kind": "outside_hours",
        "actor_id": network.anna.pk,
        "day": "2026-03-04",
    }


@working_hours
def test_a_reviewed_flag_stays_reviewed_and_unchanged(vera: User, network: Network) -> None:
    recorded(network.anna, "family.viewed", at(WEDNESDAY, 22), families(1))
    [flag] = find_flags(WEDNESDAY)
    review_flag(flag, by=vera, note="Bereitschaftsdienst, mit Leitung abgestimmt")
    recorded(network.anna, "family.viewed", at(WEDNESDAY, 23), families(3))
    [again] = find_flags(WEDNESDAY)
    again.refresh_from_db()
    assert again.pk == flag.pk and again.is_reviewed
    assert (again.event_count, again.family_count) == (1, 1)
    assert AccessFlag.objects.count() == 1
    assert open_flag_count(dpo_scope_of(vera)) == 0


def test_open_flag_count_counts_open_flags_only(vera: User, network: Network) -> None:
    # Vera, the network's DPO, sees every flag (a DPO of one agency: test_dpo_scope.py)
    for n, kind in enumerate(Kind.values):
        make_flag(network.ben, kind=kind, reviewed_by=vera if n == 0 else None)
    assert open_flag_count(dpo_scope_of(vera)) == len(Kind.values) - 1


# The review


def make_flag(
    actor: User, *, kind: str = Kind.OUTSIDE_HOURS, day: date = WEDNESDAY, **more: object
) -> AccessFlag:
    reviewed = more.get("reviewed_by") is not None
    return AccessFlag.objects.create(
        kind=kind,
        actor_id=actor.pk,
        day=day,
        event_count=3,
        family_count=2,
        first_event_id=10,
        last_event_id=12,
        reviewed_at=timezone.now() if reviewed else None,
        review_note="erledigt" if reviewed else "",
        **more,
    )


def test_review_marks_the_flag_and_records_it_without_the_note(
    vera: User, network: Network, vera_client: Client
) -> None:
    flag = make_flag(network.ben)
    response = vera_client.post(
        reverse("console:flag_review", args=[flag.pk]), {"note": "Vertretung für Clara"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("console:flags")
    flag.refresh_from_db()
    assert flag.reviewed_by == vera and flag.reviewed_at is not None
    assert flag.review_note == "Vertretung für Clara"
    [event] = AuditEvent.objects.filter(action="console.flag_reviewed")
    assert event.actor_id == vera.pk
    assert event.agency_id == network.jobcenter.pk  # Vera's membership
    assert event.details == {"flag": flag.pk, "kind": "outside_hours"}
    page = vera_client.get(response["Location"]).content.decode()
    assert "als geprüft vermerkt" in page


@pytest.mark.parametrize("note", ["", "   \n "])
def test_review_without_a_note_changes_nothing(
    network: Network, vera_client: Client, note: str
) -> None:
    flag = make_flag(network.ben)
    response = vera_client.post(reverse("console:flag_review", args=[flag.pk]), {"note": note})
    assert response.status_code == 400
    assert "Bitte schreiben Sie einen Prüfvermerk." in response.content.decode()
    flag.refresh_from_db()
    assert not flag.is_reviewed and flag.review_note == ""
    assert not AuditEvent.objects.filter(action="console.flag_reviewed").exists()


def test_reviewing_a_reviewed_flag_again_is_refused(
    vera: User, network: Network, vera_client: Client
) -> None:
    flag = make_flag(network.ben, reviewed_by=vera)
    response = vera_client.post(
        reverse("console:flag_review", args=[flag.pk]), {"note": "noch einmal"}
    )
    assert response.status_code == 400
    assert "bereits geprüft" in response.content.decode()
    flag.refresh_from_db()
    assert flag.review_note == "erledigt"
    assert not AuditEvent.objects.filter(action="console.flag_reviewed").exists()


def test_review_by_someone_who_is_no_dpo_is_refused(network: Network) -> None:
    flag = make_flag(network.ben)
    with pytest.raises(ActionError):
        review_flag(flag, by=network.clara, note="ich schaue mal")
    flag.refresh_from_db()
    assert not flag.is_reviewed


def test_flag_page_links_to_the_events_behind_it_and_is_recorded(
    network: Network, vera_client: Client
) -> None:
    flag = make_flag(network.ben, agency_id=network.jobcenter.pk)
    page = vera_client.get(reverse("console:flag_review", args=[flag.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    search = reverse("console:search")
    assert (
        f'href="{search}?actor={network.ben.pk}&amp;date_from=2026-03-04&amp;date_to=2026-03-04"'
        in html
    )
    assert "Ben Becker" in html and network.jobcenter.name in html
    [event] = AuditEvent.objects.filter(action="console.flag_viewed")
    assert event.details == {"flag": flag.pk, "kind": "outside_hours"}


def test_unknown_flag_gives_404(vera_client: Client) -> None:
    assert vera_client.get(reverse("console:flag_review", args=[999_999])).status_code == 404


@pytest.mark.parametrize("persona", ["anna", "ben", "clara", "dirk"])
def test_others_than_the_dpo_get_403(network: Network, persona: str) -> None:
    flag = make_flag(network.ben)
    client = verified_client(getattr(network, persona))
    assert client.get(reverse("console:flags")).status_code == 403
    assert client.get(reverse("console:flag_review", args=[flag.pk])).status_code == 403
    response = client.post(reverse("console:flag_review", args=[flag.pk]), {"note": "ok"})
    assert response.status_code == 403
    flag.refresh_from_db()
    assert not flag.is_reviewed
    assert AuditEvent.objects.filter(action="console.access_denied").count() == 3


# The list


def test_list_shows_open_flags_first_and_is_recorded(
    vera: User, network: Network, vera_client: Client
) -> None:
    reviewed = make_flag(network.ben, day=WEDNESDAY + timedelta(days=1), reviewed_by=vera)
    open_flag = make_flag(network.anna, kind=Kind.MANY_FAMILIES)
    response = vera_client.get(reverse("console:flags"))
    assert response.status_code == 200
    assert [row["flag"] for row in response.context["rows"]] == [open_flag, reviewed]
    [event] = AuditEvent.objects.filter(action="console.flags_viewed")
    assert event.details == {"status": "all", "kind": "all", "page": 1, "shown": 2}
    assert event.agency_id == network.jobcenter.pk  # Vera's membership


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"status": "open"}, ["anna", "clara"]),
        ({"status": "reviewed"}, ["ben"]),
        ({"kind": "many_families"}, ["anna"]),
        ({"status": "open", "kind": "outside_hours"}, ["clara"]),
    ],
)
def test_list_filters_by_status_and_kind(
    vera: User, network: Network, vera_client: Client, query: dict[str, str], expected: list[str]
) -> None:
    make_flag(network.ben, reviewed_by=vera)
    make_flag(network.anna, kind=Kind.MANY_FAMILIES)
    make_flag(network.clara, day=WEDNESDAY - timedelta(days=1))
    response = vera_client.get(reverse("console:flags"), query)
    actors = [row["flag"].actor_id for row in response.context["rows"]]
    assert actors == [getattr(network, name).pk for name in expected]


def test_list_refuses_an_unknown_filter(vera_client: Client) -> None:
    response = vera_client.get(reverse("console:flags"), {"status": "kaputt"})
    assert response.status_code == 400
    assert "Bitte die markierten Angaben berichtigen." in response.content.decode()


@override_settings(AUDIT_CONSOLE_PAGE_SIZE=2)
def test_list_is_paginated(network: Network, vera_client: Client) -> None:
    for n in range(3):
        make_flag(network.ben, day=WEDNESDAY - timedelta(days=n))
    first = vera_client.get(reverse("console:flags"), {"status": "open"})
    assert len(first.context["rows"]) == 2 and first.context["page"].has_next
    second = vera_client.get(f"{reverse('console:flags')}?{first.context['page'].next_query}")
    assert [row["flag"].day for row in second.context["rows"]] == [WEDNESDAY - timedelta(days=2)]


def queries_of(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_list_costs_the_same_for_one_and_ten_flags(
    vera: User, network: Network, vera_client: Client
) -> None:
    url = reverse("console:flags")
    make_flag(network.ben, agency_id=network.jobcenter.pk, reviewed_by=vera)
    vera_client.get(url)  # warm-up: per-process caches
    one = queries_of(vera_client, url)
    people = [network.anna, network.ben, network.clara, network.dirk, vera]
    agencies = [network.project, network.jobcenter, network.jugendamt, network.migration]
    for n in range(9):
        make_flag(
            people[n % 5],
            kind=Kind.values[n % 3],
            day=WEDNESDAY - timedelta(days=n + 1),
            agency_id=agencies[n % 4].pk,
            reviewed_by=vera if n % 2 else None,
        )
    assert queries_of(vera_client, url) == one


# The command


@working_hours
def test_command_flags_the_given_day_and_prints_what_it_flagged(network: Network) -> None:
    recorded(network.anna, "family.viewed", at(WEDNESDAY, 22), families(1))
    out = StringIO()
    call_command("flag_unusual_access", "--day", "2026-03-04", stdout=out)
    [flag] = AccessFlag.objects.all()
    assert flag.kind == Kind.OUTSIDE_HOURS
    assert f"outside_hours user:{network.anna.pk}" in out.getvalue()
    call_command("flag_unusual_access", "--day", "2026-03-04", stdout=StringIO())
    assert AccessFlag.objects.count() == 1


@working_hours
def test_command_checks_yesterday_and_today_by_default(network: Network) -> None:
    today = timezone.localdate()
    recorded(network.anna, "family.viewed", at(today - timedelta(days=1), 3), families(1))
    recorded(network.anna, "family.viewed", at(today, 3), families(1))
    out = StringIO()
    call_command("flag_unusual_access", stdout=out)
    days = set(AccessFlag.objects.values_list("day", flat=True))
    assert days == {today, today - timedelta(days=1)}
    assert today.isoformat() in out.getvalue()


def test_command_refuses_a_day_that_is_no_date() -> None:
    with pytest.raises(CommandError, match="2026-03-01"):
        call_command("flag_unusual_access", "--day", "gestern")
